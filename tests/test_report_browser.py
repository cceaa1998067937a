"""The report in a real browser (Debian's headless Chromium, over the DevTools protocol):
it opens offline, shows the checks table's numbers, logs no error, and prints on A4."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flows import report
from tests.browser import CHROMIUM, Browser
from tests.test_report import (
    AS_OF,
    copy_marts,
    expected_lights,
    expected_problems,
    runs_module_run,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sample_district")]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
A4_PRINTABLE_PX = 703  # 210 mm less two 12 mm margins, at 96 px per inch
SECTIONS = ["tom-tat", "den-bao", "xu-huong", "khong-gui", "van-de", "han-giai-quyet",
            "lan-chay", "ky-thuat"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `./dev test` installs it (apt-get install chromium)")
    with Browser() as b:
        yield b


def outside_requests(page, own_url: str) -> list[str]:
    return [u for u in page.log.requests if u != own_url and not u.startswith("data:")]


def overflowing(page) -> list[str]:
    """Elements wider than the page, or whose content is wider than themselves."""
    return page.evaluate(
        "(() => { const w = document.documentElement.clientWidth; return "
        "[...document.querySelectorAll('body *')].filter(e => { const r = "
        "e.getBoundingClientRect(); return r.width && (r.right > w + 1 || "
        "(e.matches('table, td, th, .tile, .alarm') && e.scrollWidth > e.clientWidth + 1)); })"
        ".map(e => e.tagName + '#' + (e.id || e.className)); })()"
    )


def test_report_opens_offline_shows_the_checks_and_prints_on_a4(runs, browser):
    started = time.perf_counter()
    warehouse = runs["duckdb"]["warehouse"]
    url = (runs["duckdb"]["reports"] / f"cchc-report-{AS_OF}.html").resolve().as_uri()
    page = browser.open_page(url)
    try:
        assert page.log.requests[:1] == [url]
        assert outside_requests(page, url) == []
        assert page.log.console_errors == [] and page.log.exceptions == []

        ids = set(page.evaluate("[...document.querySelectorAll('[id]')].map(e => e.id)"))
        assert set(SECTIONS) <= ids
        lights = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#den-bao .tile')]"
            ".map(t => [t.dataset.unit, t.dataset.light]))"
        )
        expected = expected_lights(warehouse, AS_OF)
        assert lights == expected
        counts = page.evaluate(
            "[...document.querySelectorAll('#den-bao .count b')].map(b => b.innerText)"
        )
        assert counts == [str(sum(1 for c in expected.values() if c == k))
                          for k in ("red", "amber", "green")]  # fmt: skip
        assert {f"don-vi-{code}" for code in expected} <= ids
        # the first problem reads as plain words with the table's count
        top_code, top_count = expected_problems(warehouse, AS_OF)[0]
        first = page.evaluate("document.querySelector('#van-de tbody tr').innerText")
        assert str(top_count) in first and top_code not in first
        # the chart is drawn locally: one slot per day, visibly sized
        width, height, bars = page.evaluate(
            "(() => { const s = document.querySelector('#xu-huong svg'); const r = "
            "s.getBoundingClientRect(); return [r.width, r.height, "
            "s.querySelectorAll('rect.accepted').length]; })()"
        )
        assert width > 600 and height > 150 and bars == 30
        shot = page.screenshot(ARTIFACTS / f"report-{AS_OF}.png")
        assert shot.stat().st_size > 50_000
        print(f"\nscreenshot: {shot}")

        # A4 print: nothing wider than the printable width, one page per unit
        page.send("Emulation.setEmulatedMedia", {"media": "print"})
        page.set_viewport(A4_PRINTABLE_PX)
        assert overflowing(page) == []
        breaks = page.evaluate(
            "[...document.querySelectorAll('section.unit')]"
            ".map(s => getComputedStyle(s).breakBefore)"
        )
        assert len(breaks) == len(expected) and set(breaks) == {"page"}
        pdf = page.print_pdf(ARTIFACTS / f"report-{AS_OF}.pdf")
        pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
        assert pages >= len(breaks) + 1
        print(f"print: {pages} A4 pages -> {ARTIFACTS / f'report-{AS_OF}.pdf'}")
        docs_url = page.evaluate("document.getElementById('gx-data-docs').href")
    finally:
        page.close()

    # the engineers' GX Data Docs, linked relatively, open offline too: their index and
    # GX's own validation page (its images and styles are local files, nothing else)
    site = url.rsplit("/", 1)[0] + "/gx-data-docs/"
    assert docs_url == site + "index.html"
    docs = browser.open_page(docs_url)
    try:
        assert [u for u in docs.log.requests if not u.startswith((site, "data:"))] == []
        links = docs.evaluate("[...document.querySelectorAll('a')].map(a => a.href)")
        for suite in ("dossier_files", "task_files", "document_files"):
            assert any(u.startswith(f"{site}validations/{suite}/") for u in links), suite
    finally:
        docs.close()
    validation = next(u for u in links if "/validations/dossier_files/" in u)
    page = browser.open_page(validation)
    try:
        assert [u for u in page.log.requests if not u.startswith((site, "data:"))] == []
        assert page.log.exceptions == [] and page.log.console_errors == []
        text = page.evaluate("document.body.innerText")
        assert "Expectation Validation Result" in text and "values must never be null" in text
    finally:
        page.close()
    print(f"browser test: {time.perf_counter() - started:.1f} s")


def test_a_failed_night_is_the_first_thing_the_reader_sees(runs, browser, tmp_path):
    warehouse = copy_marts(runs["duckdb"]["warehouse"], tmp_path / "w.duckdb")
    runs_module_run(warehouse, "20250701T010000-failed", "2025-07-01",
                    "AuditError: marts.fct_dossier: 10 dòng, trước đây 28930")  # fmt: skip
    path = report.write_report(warehouse, "2025-07-01", "20250701T010000-failed", tmp_path / "r")
    url = path.resolve().as_uri()
    page = browser.open_page(url)
    try:
        assert outside_requests(page, url) == []
        assert page.log.console_errors == [] and page.log.exceptions == []
        page.set_viewport(794)
        top, text, colour = page.evaluate(
            "(() => { const a = document.getElementById('that-bai'); return "
            "[a.getBoundingClientRect().top, a.innerText, getComputedStyle(a).borderTopColor]; })()"
        )
        assert top < 150  # right under the title, before anything else
        assert text.startswith("Lần chạy ngày 01/07/2025 thất bại: AuditError")
        assert "số liệu dưới đây là của lần công bố trước" in text
        assert colour == "rgb(179, 38, 30)"
        shot = page.screenshot(ARTIFACTS / "report-failed-run.png", full_page=False)
        print(f"\nscreenshot: {shot}")
    finally:
        page.close()
