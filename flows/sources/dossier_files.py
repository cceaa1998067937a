"""Dossier log files from one-stop desks (CONTRACTS §1a): parse -> typed frame."""

from __future__ import annotations

import pandas as pd

from flows.sources.common import (
    FileLayout,
    ParsedTable,
    SourceFile,
    discover_unit_files,
    parse_amounts,
    parse_datetimes,
    parse_integers,
)

# Contract header -> canonical column (CONTRACTS §1a, in contract order).
COLUMNS = {
    "Mã hồ sơ": "dossier_code",
    "Mã đơn vị": "unit_code",
    "Mã TTHC": "procedure_code",
    "Kênh nộp": "channel",
    "Ngày tiếp nhận": "received_at",
    "Ngày hẹn trả": "due_at",
    "Ngày kết thúc xử lý": "finished_at",
    "Ngày trả kết quả": "returned_at",
    "Trạng thái": "status_code",
    "Số lần bổ sung": "supplement_count",
    "Lệ phí": "fee_vnd",
    "Thanh toán trực tuyến": "paid_online",
    "Số hóa": "digitized",
    "Kết quả điện tử": "e_result",
    "Tái sử dụng": "reused",
    "Ngày xin lỗi": "apology_at",
    "Họ tên người nộp": "applicant_name",
    "Số giấy tờ": "applicant_id",
    "Ngày cập nhật": "updated_at",
}
HEADER_OF = {name: header for header, name in COLUMNS.items()}

# A file without these columns cannot hold real records; the others may be absent.
REQUIRED = {"dossier_code", "received_at", "status_code", "channel"}

DATETIME_COLUMNS = [
    "received_at",
    "due_at",
    "finished_at",
    "returned_at",
    "apology_at",
    "updated_at",
]
INTEGER_COLUMNS = [
    "channel",
    "status_code",
    "supplement_count",
    "paid_online",
    "digitized",
    "e_result",
    "reused",
]
TEXT_COLUMNS = ["dossier_code", "unit_code", "procedure_code", "applicant_name", "applicant_id"]

# How the warehouse types each landed cell (flows.refine), in contract order.
TYPES = {
    name: "unit" if name == "unit_code" else
    "text" if name in TEXT_COLUMNS else
    "datetime" if name in DATETIME_COLUMNS else
    "amount" if name == "fee_vnd" else "integer"
    for name in COLUMNS.values()
}  # fmt: skip
# Dates alone, for rules that compare days (a due date may carry no time).
DAYS = {"received_on": "received_at", "due_on": "due_at"}


RECORD_CODE = "dossier_code"
SUITE = "dossier_files"
TABLE = "dossier_log"


FORMAT = FileLayout(COLUMNS, REQUIRED, discover_unit_files)
discover = FORMAT.discover
read_chunks = FORMAT.read_chunks
read = FORMAT.read


def to_typed(text: pd.DataFrame) -> pd.DataFrame:
    """Typed columns of a batch of read files, beside the text they came from (`<col>__text`).

    Done once per batch, not per file: pandas pays per call, not per row. Nothing is
    dropped here: deciding what is quarantined is validation's job.
    """
    text, typed = FORMAT.typed_base(text)
    for col in TEXT_COLUMNS:
        typed[col] = text[col].where(text[col] != "", None)
    # The folder names the unit when the row leaves it empty.
    typed["unit_code"] = typed["unit_code"].fillna(typed["unit_folder"])
    for col in DATETIME_COLUMNS:
        typed[col] = parse_datetimes(text[col])
    for col in INTEGER_COLUMNS:
        typed[col] = parse_integers(text[col])
    typed["fee_vnd"] = parse_amounts(text["fee_vnd"])
    # Dates alone, for rules that compare days (a due date may carry no time).
    typed["received_on"] = typed["received_at"].dt.normalize()
    typed["due_on"] = typed["due_at"].dt.normalize()
    texts = {f"{col}__text": text[col] for col in [*DATETIME_COLUMNS, *INTEGER_COLUMNS, "fee_vnd"]}
    return pd.concat([typed, pd.DataFrame(texts, index=text.index)], axis=1)


def parse(file: SourceFile) -> tuple[pd.DataFrame, ParsedTable]:
    """One file, read and typed (the loader reads many files, then types them at once)."""
    table = read(file)
    return to_typed(table.frame), table
