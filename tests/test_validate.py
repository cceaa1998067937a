"""The Great Expectations suites: reviewable in code, stored as JSON, deciding row fates."""

from __future__ import annotations

import json

import pandas as pd

from flows import validate


def test_committed_suite_json_is_what_the_code_generates():
    for name in validate.SUITE_BUILDERS:
        committed = (validate.EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == validate.suite_json(name), f"run `python -m flows.validate` ({name})"


def test_every_expectation_names_its_rule_severity_and_vietnamese_message():
    for name in validate.SUITE_BUILDERS:
        stored = json.loads(validate.suite_json(name))
        rules = [e["meta"]["rule"] for e in stored["expectations"]]
        assert len(rules) == len(set(rules)), name
        for expectation in stored["expectations"]:
            assert expectation["severity"] in ("critical", "warning")
            assert expectation["meta"]["message_vi"]
    suite = json.loads(validate.suite_json("dossier_files"))
    critical = {e["meta"]["rule"] for e in suite["expectations"] if e["severity"] == "critical"}
    # CONTRACTS §1f: only what cannot be a real record is quarantined
    assert critical == {
        "dossier_code_missing",
        "received_at_invalid",
        "received_at_implausible",  # before 1990: an impossible required date
        "status_code_missing",
        "status_code_domain",
        "channel_missing",
        "channel_domain",
    }


def test_findings_point_at_rows_and_values():
    frame = pd.DataFrame(
        {
            "dossier_code": ["H31-250402-0001", None],
            "unit_code": ["11629", "11629"],
            "unit_folder": ["11629", "11629"],
            "procedure_code": ["1.001193", "1.00119"],
            "received_at": [pd.Timestamp("2025-04-02 08:00"), pd.NaT],
            "received_at__text": ["02/04/2025 08:00", "31/02/2025"],
            "status_code": pd.array([4, 11], dtype="Int64"),
            "status_code__text": ["4", "11"],
            "channel": pd.array([1, 2], dtype="Int64"),
            "channel__text": ["1", "2"],
        }
    )
    for col in ["due_at", "finished_at", "returned_at", "apology_at", "updated_at"]:
        frame[col] = pd.NaT
        frame[f"{col}__text"] = ""
    for col in ["fee_vnd", "supplement_count", "paid_online", "digitized", "e_result", "reused"]:
        frame[col] = pd.array([0, 0], dtype="Int64")
        frame[f"{col}__text"] = "0"
    frame["received_on"] = frame.received_at.dt.normalize()
    frame["due_on"] = frame.due_at
    found = validate.findings(frame, "dossier_files")
    by_rule = {r.rule: (r.row_index, r.value, r.severity) for r in found.itertuples()}
    assert by_rule == {
        "dossier_code_missing": (1, None, "critical"),
        "received_at_invalid": (1, "31/02/2025", "critical"),
        "status_code_domain": (1, "11", "critical"),
        "procedure_code_format": (1, "1.00119", "warning"),
    }
