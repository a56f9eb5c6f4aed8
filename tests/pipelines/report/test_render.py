"""The report laid out by headless Chromium, in English and Chinese: the verdict, the
proposals side by side and every chart are there, and no text overflows its cell, no
header is squeezed to one character a line and nothing sticks out of the page. A control
page with an overflowing cell and a squeezed header shows the measurement can fail."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from pipelines.report.document import chromium

MEASURE = Path(__file__).with_name("measure.js")
A4_WIDTH = 794  # px at 96 dpi: the page the PDF is printed on
# sections with a chart: history, what a member gets, by age, the term's loss after
# settlement, the frontier, the forecast by age
CHARTS = ("history", "member", "by_age", "contract", "frontier", "forecast")
SMALLEST_PT = 7.0  # the smallest chart text readable on paper


def measured(page: str, tmp_path: Path) -> dict:
    """The layout of `page` in headless Chromium at A4 width (measure.js)."""
    exe = chromium()
    if exe is None:
        pytest.fail("the layout tests need Chromium: `apt-get install chromium` (.ci/run does)")
    copy = tmp_path / "measured.html"
    copy.write_text(page.replace("</body>", f"<script>{MEASURE.read_text()}</script></body>"),
                    encoding="utf-8")
    result = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={A4_WIDTH},1123",
         "--dump-dom", copy.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="measure">(\{.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def test_the_measurement_sees_an_overflowing_cell_and_a_squeezed_header(tmp_path):
    page = ('<!DOCTYPE html><html><body style="width:300px"><section id="x">'
            '<table style="width:100%"><thead><tr><th style="width:1px">现行方案</th>'
            '<th style="width:100%">x</th></tr></thead></table><table><tbody><tr>'
            f'<td style="max-width:50px;overflow:hidden">{"8" * 200}</td></tr></tbody>'
            "</table></section></body></html>")
    layout = measured(page, tmp_path)
    assert layout["overflow"] and layout["narrow"], layout


@pytest.fixture(scope="module")
def layouts(report, tmp_path_factory):
    lang, out = report
    page = (out / "report.html").read_text(encoding="utf-8")
    return lang, out, measured(page, tmp_path_factory.mktemp(f"layout-{lang}"))


def test_verdict_proposals_and_charts_are_laid_out(layouts, plan_dirs):
    lang, _out, layout = layouts
    docs = [json.loads((d / "plan.json").read_text()) for d in plan_dirs]
    plans = 1 + sum("kpis" in d for d in docs)  # today's plan and each feasible proposal
    sections = layout["sections"]
    verdict = sections["verdict"]
    assert len(verdict["paragraphs"]) >= 3 and min(verdict["paragraphs"]) > 10, (lang, verdict)
    assert verdict["tables"] == [{"columns": 1 + plans, "rows": 3}], verdict
    assert sections["kpis"]["tables"][0]["columns"] == 1 + plans
    assert sections["terms"]["tables"][0]["columns"] == 1 + plans
    for name in CHARTS:
        charts = sections[name]["charts"]
        assert charts, (lang, name)
        for chart in charts:  # drawn at a readable size, with its words and marks
            assert chart["width"] > 300 and chart["height"] > 100, (lang, name, chart)
            assert chart["texts"] >= 5 and chart["marks"] >= 10, (lang, name, chart)
            # no text (legends included) below 7 pt as printed (A4 width is the page's)
            assert chart["smallest_font_px"] >= SMALLEST_PT * 4 / 3 - 0.05, (lang, name, chart)


def test_no_text_overflows_its_cell_or_the_page(layouts):
    lang, _out, layout = layouts
    assert layout["overflow"] == [], (lang, layout["overflow"])
    assert layout["narrow"] == [], (lang, layout["narrow"])
    assert layout["outside"] == [], (lang, layout["outside"])
