"""Great Expectations suites for source batches, and the split of a batch they decide.

Suites are built in code (reviewable here) and written as JSON into `expectations/`,
where the pipeline reads them. `python -m flows.validate` rewrites the JSON files.
Severity `critical` quarantines the row (CONTRACTS §1f); `warning` loads it and flags it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flows.sources import document_files, task_files
from flows.sources.dossier_files import HEADER_OF

if TYPE_CHECKING:  # imported where used: loading files alone never needs GX's 3 s import
    import great_expectations as gx
    import great_expectations.expectations as gxe

EXPECTATIONS_DIR = Path(__file__).resolve().parents[1] / "expectations"

DOSSIER_CODE = r"^[0-9A-Za-z.\-_]+-\d{6}-\d{4}$"
# 2-digit province, 3-digit district, 5-digit commune, or a registered department's code
UNIT_CODE = r"^(?:[0-9]{2}|[0-9]{3}|[0-9]{5}|[0-9]{2,5}-[0-9A-Za-z.\-_]+|[A-Za-z][0-9A-Za-z.\-_]*)$"
PROCEDURE_CODE = r"^\d\.\d{6}$"
STATUS_CODES = list(range(1, 11))
EARLIEST = datetime(1990, 1, 1)  # no one-stop desk logged a dossier before this
CHANNELS = [1, 2, 3]


def _meta(rule: str, column: str | None, message_vi: str, **more) -> dict:
    return {"rule": rule, "column": column, "message_vi": message_vi, **more}


# Reference data the warehouse-level expectations read (`{batch}`: the rows of one run).
KNOWN_UNITS = (
    "(select unit_code from raw.ref_admin_units union select unit_code from raw.registered_units)"
)
PROCEDURES = "cchc_intermediate.int_procedures__catalogue"


def _duplicates(columns: list[str], shown: str, headers, message_vi: str) -> gxe.Expectation:
    """The same record twice in one file (a day's export holds each record once)."""
    import great_expectations.expectations as gxe

    return gxe.ExpectCompoundColumnsToBeUnique(
        column_list=columns,
        severity="warning",
        meta=_meta("duplicate_in_file", headers[shown], message_vi, value_column=shown),
    )


def _unregistered_unit(column: str, headers) -> gxe.Expectation:
    """Evaluated in the warehouse after loading: needs the unit lists."""
    import great_expectations.expectations as gxe

    return gxe.UnexpectedRowsExpectation(
        unexpected_rows_query=(
            f"select * from {{batch}} b where b.{column} is not null "
            f"and b.{column} not in {KNOWN_UNITS}"
        ),
        severity="warning",
        meta=_meta(
            f"{column}_unregistered",
            headers[column],
            "Mã đơn vị không có trong danh sách đơn vị hành chính hay đơn vị đã đăng ký.",
            value_column=column,
        ),
    )


def _readable(column: str, severity: str = "warning", headers=HEADER_OF) -> gxe.Expectation:
    """A date or number that was written but could not be read."""
    import great_expectations.expectations as gxe

    header = headers[column]
    return gxe.ExpectColumnValuesToNotBeNull(
        column=column,
        row_condition=f'{column}__text != ""',
        condition_parser="pandas",
        severity=severity,
        meta=_meta(
            f"{column}_unreadable",
            header,
            f"Giá trị cột «{header}» không đọc được (sai định dạng hoặc ngày không tồn tại).",
        ),
    )


def build_dossier_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    h = HEADER_OF
    expectations = [
        # critical: the row cannot be a real dossier
        gxe.ExpectColumnValuesToNotBeNull(
            column="dossier_code",
            severity="critical",
            meta=_meta("dossier_code_missing", h["dossier_code"], "Thiếu mã hồ sơ."),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="received_at",
            severity="critical",
            meta=_meta(
                "received_at_invalid",
                h["received_at"],
                "Ngày tiếp nhận trống, sai định dạng hoặc không tồn tại.",
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="received_at",
            min_value=EARLIEST,
            severity="critical",
            meta=_meta(
                "received_at_implausible",
                h["received_at"],
                "Ngày tiếp nhận trước năm 1990: không thể là hồ sơ thật.",
            ),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="file_date",
            column_B="received_on",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta(
                "received_after_file_date",
                h["received_at"],
                "Ngày tiếp nhận sau ngày của tệp dữ liệu (ngày trong tương lai).",
                value_column="received_at",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="status_code",
            severity="critical",
            meta=_meta(
                "status_code_missing", h["status_code"], "Trạng thái trống hoặc không phải số."
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="status_code",
            value_set=STATUS_CODES,
            severity="critical",
            meta=_meta(
                "status_code_domain",
                h["status_code"],
                "Trạng thái ngoài danh mục (chỉ từ 1 đến 10).",
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="channel",
            severity="critical",
            meta=_meta("channel_missing", h["channel"], "Kênh nộp trống hoặc không phải số."),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="channel",
            value_set=CHANNELS,
            severity="critical",
            meta=_meta(
                "channel_domain",
                h["channel"],
                "Kênh nộp ngoài danh mục (1 trực tiếp, 2 trực tuyến, 3 bưu chính).",
            ),
        ),
        # warning: a real dossier whose paperwork is odd
        gxe.ExpectColumnValuesToMatchRegex(
            column="dossier_code",
            regex=DOSSIER_CODE,
            severity="warning",
            meta=_meta(
                "dossier_code_format",
                h["dossier_code"],
                "Mã hồ sơ không đúng dạng <mã cơ quan>-<YYMMDD>-<4 số thứ tự>.",
            ),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="procedure_code",
            regex=PROCEDURE_CODE,
            severity="warning",
            meta=_meta(
                "procedure_code_format",
                h["procedure_code"],
                "Mã thủ tục hành chính không đúng dạng quốc gia (ví dụ 1.001193).",
            ),
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="unit_code",
            column_B="unit_folder",
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta(
                "unit_code_folder_mismatch",
                h["unit_code"],
                "Mã đơn vị trong tệp khác thư mục đơn vị gửi tệp.",
            ),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="due_on",
            column_B="received_on",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta("due_before_received", h["due_at"], "Ngày hẹn trả trước ngày tiếp nhận."),
        ),
        *(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=column,
                column_B="received_at",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                severity="warning",
                meta=_meta(f"{column}_before_received", h[column], f"{what} trước ngày tiếp nhận."),
            )
            for column, what in (
                ("finished_at", "Ngày kết thúc xử lý"),
                ("returned_at", "Ngày trả kết quả"),
            )
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="fee_vnd",
            min_value=0,
            severity="warning",
            meta=_meta("fee_vnd_negative", h["fee_vnd"], "Lệ phí âm."),
        ),
        gxe.ExpectColumnValuesToMatchRegex(
            column="unit_code",
            regex=UNIT_CODE,
            severity="warning",
            meta=_meta(
                "unit_code_format",
                h["unit_code"],
                "Mã đơn vị không đúng dạng (xã 5 số, huyện 3 số, tỉnh 2 số, hoặc mã phòng ban "
                "đã đăng ký).",
            ),
        ),
        _duplicates(
            ["file_path", "unit_code", "dossier_code"],
            "dossier_code",
            h,
            "Một hồ sơ xuất hiện nhiều lần trong cùng một tệp.",
        ),  # fmt: skip
        _unregistered_unit("unit_code", h),
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                "select * from {batch} b where b.procedure_code is not null and not exists "
                f"(select 1 from {PROCEDURES} p where p.procedure_code = b.procedure_code)"
            ),
            severity="warning",
            meta=_meta(
                "procedure_unknown",
                h["procedure_code"],
                "Mã thủ tục hành chính không có trong danh mục thủ tục.",
                value_column="procedure_code",
            ),
        ),
        *(
            _readable(c)
            for c in [
                "due_at",
                "finished_at",
                "returned_at",
                "apology_at",
                "updated_at",
                "fee_vnd",
                "supplement_count",
                "paid_online",
                "digitized",
                "e_result",
                "reused",
            ]
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="supplement_count",
            min_value=0,
            severity="warning",
            meta=_meta("supplement_count_negative", h["supplement_count"], "Số lần bổ sung âm."),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="paid_online",
            value_set=[0, 1, 2],
            severity="warning",
            meta=_meta(
                "paid_online_domain",
                h["paid_online"],
                "Thanh toán trực tuyến chỉ nhận 0, 1 hoặc 2.",
            ),
        ),
        *(
            gxe.ExpectColumnValuesToBeInSet(
                column=c,
                value_set=[0, 1],
                severity="warning",
                meta=_meta(f"{c}_domain", h[c], f"Cột «{h[c]}» chỉ nhận 0 hoặc 1."),
            )
            for c in ["digitized", "e_result", "reused"]
        ),
    ]
    return gx.ExpectationSuite(name="dossier_files", expectations=expectations)


def build_task_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    h = task_files.HEADER_OF
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(
            column="task_id",
            severity="critical",
            meta=_meta("task_id_missing", h["task_id"], "Thiếu mã nhiệm vụ."),
        ),
        *(
            gxe.ExpectColumnValuesToNotBeNull(
                column=col,
                severity="critical",
                meta=_meta(
                    f"{col}_invalid",
                    h[col],
                    f"«{h[col]}» trống, sai định dạng hoặc không tồn tại.",
                ),
            )
            for col in ("assigned_on", "deadline_on")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="department_code",
            severity="warning",
            meta=_meta(
                "department_code_missing", h["department_code"], "Thiếu đơn vị chủ trì nhiệm vụ."
            ),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="deadline_on",
            column_B="assigned_on",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta(
                "deadline_before_assigned", h["deadline_on"], "Hạn hoàn thành trước ngày giao."
            ),
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="completed_on",
            column_B="assigned_on",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta(
                "completed_before_assigned", h["completed_on"], "Ngày hoàn thành trước ngày giao."
            ),
        ),
        _readable("completed_on", headers=h),
        _readable("updated_at", headers=h),
        _duplicates(
            ["file_path", "task_id"],
            "task_id",
            h,
            "Một nhiệm vụ xuất hiện nhiều lần trong cùng một tệp.",
        ),  # fmt: skip
        _unregistered_unit("department_code", h),
    ]
    return gx.ExpectationSuite(name="task_files", expectations=expectations)


def build_document_suite() -> gx.ExpectationSuite:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    h = document_files.HEADER_OF
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(
            column="document_number",
            severity="critical",
            meta=_meta(
                "document_number_missing", h["document_number"], "Thiếu số ký hiệu văn bản."
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="issued_on",
            severity="critical",
            meta=_meta(
                "issued_on_invalid",
                h["issued_on"],
                "Ngày ban hành trống, sai định dạng hoặc không tồn tại.",
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="digitally_signed",
            value_set=[0, 1],
            severity="warning",
            meta=_meta(
                "digitally_signed_domain", h["digitally_signed"], "Cột «Ký số» chỉ nhận 0 hoặc 1."
            ),
        ),
        _readable("digitally_signed", headers=h),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="unit_code",
            column_B="unit_folder",
            ignore_row_if="either_value_is_missing",
            severity="warning",
            meta=_meta(
                "unit_code_folder_mismatch",
                h["unit_code"],
                "Mã đơn vị trong tệp khác thư mục đơn vị gửi tệp.",
            ),
        ),
        _duplicates(
            ["file_path", "unit_code", "document_number"],
            "document_number",
            h,
            "Một văn bản xuất hiện nhiều lần trong cùng một tệp.",
        ),  # fmt: skip
        _unregistered_unit("unit_code", h),
    ]
    return gx.ExpectationSuite(name="document_files", expectations=expectations)


def build_dossier_api_suite() -> gx.ExpectationSuite:
    """The department API's records: the dossier rules, less those about files and folders."""
    import great_expectations as gx

    file_rules = {"unit_code_folder_mismatch", "duplicate_in_file"}
    kept = [e for e in build_dossier_suite().expectations if e.meta["rule"] not in file_rules]
    return gx.ExpectationSuite(name="dossier_api", expectations=kept)


SUITE_BUILDERS = {
    "dossier_files": build_dossier_suite,
    "dossier_api": build_dossier_api_suite,
    "task_files": build_task_suite,
    "document_files": build_document_suite,
}


def suite_json(name: str) -> str:
    return json.dumps(SUITE_BUILDERS[name]().to_json_dict(), ensure_ascii=False, indent=2) + "\n"


def write_suites(directory: Path = EXPECTATIONS_DIR) -> list[Path]:
    written = []
    for name in SUITE_BUILDERS:
        path = directory / f"{name}.json"
        path.write_text(suite_json(name), encoding="utf-8")
        written.append(path)
    return written


@cache
def _validation(name: str):
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("cchc")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("batch")
    )
    stored = json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    # SQL-only expectations read the warehouse's reference tables: flows.audit runs them
    stored["expectations"] = [
        e for e in stored["expectations"] if e["type"] != "unexpected_rows_expectation"
    ]
    suite = context.suites.add(gx.ExpectationSuite(**stored))
    return context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name=f"{name}_batch")
    )


def findings(frame: pd.DataFrame, suite_name: str) -> pd.DataFrame:
    """Every (row, rule) the suite rejects, with severity, column, value and message.

    `frame` must have a unique index; findings refer to it in `row_index`.
    """
    empty = pd.DataFrame(
        columns=["row_index", "rule", "severity", "column_name", "value", "message_vi"]
    )
    if frame.empty:
        return empty
    result = _validation(suite_name).run(
        batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"}
    )
    rows = []
    for outcome in result.results:
        config = outcome.expectation_config
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"validation rule {config.meta.get('rule')} could not run: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if outcome.success:
            continue
        column = (
            config.meta.get("value_column")
            or config.kwargs.get("column")
            or config.kwargs.get("column_A")
        )
        text_column = next(
            (
                c
                for c in (f"{column}__text", f"{column.removesuffix('_on')}_at__text")
                if c in frame
            ),
            column,
        )
        for index in outcome.result.get("unexpected_index_list") or []:
            value = frame.at[index, text_column]
            rows.append(
                {
                    "row_index": index,
                    "rule": config.meta["rule"],
                    "severity": str(getattr(config.severity, "value", config.severity)),
                    "column_name": config.meta.get("column"),
                    "value": None if pd.isna(value) else str(value),
                    "message_vi": config.meta["message_vi"],
                }
            )
    return pd.DataFrame(rows, columns=empty.columns) if rows else empty


if __name__ == "__main__":
    for written in write_suites():
        print(written)
