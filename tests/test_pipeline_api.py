"""`cchc run` with a department API source beside the commune files, end to end."""

from __future__ import annotations

import json

import pytest

from flows import simulate
from flows.simulate_api import ApiServer, FaultPlan, department_records
from flows.warehouse import Warehouse

pytestmark = pytest.mark.slow

TOKEN = "test-token-Zq8vL2mW"  # noqa: S105  (a test value; it must never show anywhere)
PASSWORD = "pw-Hn4kR7xT"  # trust authentication ignores it; it must never show either


def test_api_source_down_a_night_fails_alone_and_catches_up_by_watermark(
    tmp_path, cchc, warehouse_url, httpserver
):
    sources = simulate.generate_district(tmp_path / "district", seed=3, days=30)
    records = department_records(per_department=15, days=30)
    url = warehouse_url.replace("postgres@", f"postgres:{PASSWORD}@")  # DuckDB: no password
    listed = sources.read_text(encoding="utf-8")

    def with_api(server, attempts: int) -> None:
        sources.write_text(
            listed + f"  - name: phong_ban_api\n    kind: dossier_api\n    url: {server.url}\n"
            f"    token_env: CCHC_TEST_API_TOKEN\n    max_attempts: {attempts}\n",
            encoding="utf-8",
        )

    reports = tmp_path / "reports"
    args = ["run", "--sources", str(sources), "--warehouse", url, "--as-of", "2025-06-30",
            "--report-dir", str(reports)]  # fmt: skip
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = {"CCHC_TEST_API_TOKEN": TOKEN, "CCHC_WEBHOOK_URL": httpserver.url_for("/hook")}
    warehouse = Warehouse.from_url(url)

    # a night the API answers nothing but errors
    with ApiServer(records, TOKEN, faults=FaultPlan(rate_500=1.0)) as down:
        with_api(down, attempts=2)
        # policy "fail" (the default): nothing published
        strict = cchc(*args, env=env)
        assert strict.returncode == 1
        assert "source phong_ban_api failed" in strict.stderr.strip().splitlines()[-1]
        assert not warehouse.table_exists("marts", "fct_dossier")
        # policy "publish_others": the communes are published, the API reported failed
        first = cchc(*args, env={**env, "CCHC_SOURCE_FAILURE_POLICY": "publish_others"})
        assert first.returncode == 0, first.stderr[-3000:]
        assert "cchc: warning: published without phong_ban_api" in first.stderr
    published = warehouse.query_df("select unit_code from marts.fct_dossier")
    assert len(published) and not published.unit_code.str.startswith("313-").any()
    night = warehouse.query_df(
        "select status, sources_json from marts.pipeline_runs order by started_at"
    )
    assert list(night.status) == ["failed", "published"]
    assert json.loads(night.sources_json.iloc[1])["phong_ban_api"]["status"] == "failed"
    events = [req.get_json()["event"] for req, _ in httpserver.log]
    assert events == ["cchc.run_failed", "cchc.source_failed"]

    # the next night it answers, with faults on a third of the requests: it catches up
    # from its watermark
    faults = FaultPlan(rate_429=0.2, rate_500=0.1, max_streak=2, seed=5)
    with ApiServer(records, TOKEN, faults=faults) as server:
        with_api(server, attempts=6)
        second = cchc(*args, env=env)
        assert second.returncode == 0, second.stderr[-3000:]

    # secrets stay in their variables: not in logs, reports, run history, Prefect
    seen = [strict.stdout, strict.stderr, first.stdout, first.stderr, second.stdout, second.stderr]
    seen += [p.read_text("utf-8", "replace") for p in reports.rglob("*") if p.is_file()]
    seen.append(Warehouse.from_url(url).query_df("select * from marts.pipeline_runs").to_csv())
    seen.append(json.dumps(_prefect_parameters(), default=str))
    for text in seen:
        assert TOKEN not in text and PASSWORD not in text

    landed = warehouse.query_df(
        "select dossier_code, count(*) as n from raw.dossier_log "
        "where source_name = 'phong_ban_api' group by 1"
    )
    assert len(landed) == len(records)  # every record once, none twice
    assert set(landed.n) == {1}
    departments = warehouse.query_df(
        "select distinct unit_code from marts.fct_dossier where unit_code like '313-%'"
    )
    assert set(departments.unit_code) == {"313-TNMT", "313-KTHT", "313-TCKH", "313-NV"}
    district = warehouse.query_df(
        "select received from marts.dossier_timeliness where unit_code = '313' "
        "and period_grain = 'quarter' and period_start = date '2025-04-01'"
    ).received[0]
    below = warehouse.query_df(
        "select sum(received) as n from marts.dossier_timeliness where period_grain = 'quarter' "
        "and period_start = date '2025-04-01' and unit_code in "
        "(select unit_code from marts.dim_unit where parent_unit_code = '313')"
    ).n[0]
    own = warehouse.query_df(
        "select count(*) as n from marts.fct_dossier where unit_code = '313' "
        "and status_code <> 1 and received_at >= date '2025-04-01'"
    ).n[0]
    # the district row counts its own desk, its communes and its departments (API)
    assert district == below + own


def _prefect_parameters() -> list[dict]:
    """Every flow run's parameters as the Prefect server stores them."""
    import asyncio

    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return [run.parameters for run in await client.read_flow_runs()]

    return asyncio.run(read())
