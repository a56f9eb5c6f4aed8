"""The report is in the data's money unit (`[data] currency`, carried by the forecast into
plan.json): another unit is named everywhere, in both languages, with no CNY and no 元
left; the unit is user text, escaped in the HTML and never read as markup or mathtext;
CNY reads as it always did, and a plan that names no unit is in CNY."""

from __future__ import annotations

import html
import json
import re
import shutil
import string

import openpyxl
import pytest
from typer.testing import CliRunner

from forecasting.data.publish import write_manifest
from forecasting.errors import UserError
from pipelines.cli import app
from pipelines.conventions import LANGS
from pipelines.report.document import Report, read_plans
from pipelines.report.infeasible import change_text
from pipelines.report.labels import RULES, TEXT, UNITS, money_words, rule, t, unit

runner = CliRunner()
# a unit of another currency, and one that would be markup in HTML, rich and mathtext
# (two dollars in one label) and a template field if it were ever formatted again
UNITS_GIVEN = ["HKD", '<b>&"x$ {cur}[/x]']
DEVELOPMENT = {"as_of": "2022-01-31", "year": 2021, "reported": 1.0e6, "completed": 1.1e6,
               "factor": 1.1, "low": 1.05e6, "high": 1.2e6, "method": "chain ladder",
               "level": 0.9}


def _filled(template: str) -> dict[str, str]:
    """A value for every field of a template but the money unit's."""
    return {name: "9" for _, name, _, _ in string.Formatter().parse(template)
            if name and not name.startswith("cur")}


def _labels():
    for table in (TEXT, RULES, UNITS):
        for key, texts in table.items():
            for lang in LANGS:
                yield key, lang, texts[lang]


def test_every_label_names_the_unit_given():
    """Every text of the report that names money names the plans' unit: CNY (元 in
    Chinese) for CNY, the unit as given for another, and then no CNY and no 元."""
    for key, lang, template in _labels():
        words = {"cur": "HKD", "cur_glued": " HKD"}
        if lang == "zh":
            assert money_words("CNY", "zh") == {"cur": "元", "cur_glued": "元"}
            assert money_words("千元", "zh") == {"cur": "千元", "cur_glued": "千元"}
            words = money_words("HKD", "zh")
        text = template.format(**_filled(template), **words)
        assert "CNY" not in text and "元" not in text, (key, lang, text)
        if "{cur" in template:
            assert "HKD" in text, (key, lang, text)
    assert t("a_loss", "en", "HKD", x="5") == "a loss of HKD 5"
    assert t("a_loss", "zh", "CNY", x="5") == "亏损 5 元"
    assert rule("no_worse_general_50000", "zh", "HKD") == (
        "普通参保人年度费用50,000 HKD时赔付不低于现行")
    assert unit("CNY of cap", "zh", "HKD") == "封顶线1 HKD"
    assert change_text({"rule": "premium", "now": 60.0, "to": 72.5}, "zh", "HKD") == (
        "人均筹资标准72.5 HKD，而非固定的60 HKD")
    with pytest.raises(KeyError):  # a text naming money without a unit: never made up
        t("a_loss", "en", x="5")


def _relabelled_forecast(forecast_dir, folder, currency: str):
    """The forecast folder as if its data were in `currency` (provenance), signed again."""
    shutil.copytree(forecast_dir, folder)
    path = folder / "forecast.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["provenance"]["currency"] = currency
    path.write_text(json.dumps(doc), encoding="utf-8")
    inputs = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    write_manifest(folder, "forecast", inputs)
    return folder


@pytest.fixture(scope="module", params=UNITS_GIVEN)
def unit_plans(request, forecast_dir, tmp_path_factory):
    """(unit, plan folders A and B) optimised from the small city's forecast in another
    unit, the latest year's completion added to A's provenance (plan.json signed again)."""
    currency = request.param
    root = tmp_path_factory.mktemp("unit")
    fc = _relabelled_forecast(forecast_dir, root / "fc", currency)
    dirs = []
    for objective in ("min-loss", "break-even"):
        out = root / objective
        result = runner.invoke(app, ["optimize", "--forecast", str(fc), "--objective",
                                     objective, "--out", str(out), "--frontier-points", "4"])
        assert result.exit_code == 0, result.output
        assert f"{currency} per capita" in result.output, result.output
        dirs.append(out)
    doc = json.loads((dirs[0] / "plan.json").read_text(encoding="utf-8"))
    assert doc["currency"] == currency  # plan.json names its unit (format 4)
    doc["provenance"]["development"] = DEVELOPMENT
    (dirs[0] / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
    write_manifest(dirs[0], "plan", {})
    return currency, dirs


def _report(dirs, out, lang):
    args = ["report", "--out", str(out), "--lang", lang]
    for d in dirs:
        args += ["--plans", str(d)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    book = openpyxl.load_workbook(out / "report.xlsx")
    cells = [str(c) for sheet in book for r in sheet.iter_rows(values_only=True) for c in r
             if c is not None] + [str(c) for sheet in book for c in
                                  next(sheet.iter_rows(max_row=1, values_only=True), ())]
    return page, " ".join(cells)


@pytest.mark.parametrize("lang", LANGS)
def test_a_report_in_another_unit_names_it_and_never_cny(unit_plans, lang, tmp_path):
    """Sentences, tables, the charts' axes (inline SVG) and every workbook cell are in the
    plans' unit; the HTML holds the unit escaped, never as markup."""
    currency, dirs = unit_plans
    page, book = _report(dirs, tmp_path / "report", lang)
    for where, text in (("html", page), ("xlsx", book)):
        assert "CNY" not in text and "元" not in text, where
    assert html.unescape(page).count(currency) > 50
    assert book.count(currency) > 50
    if currency != "HKD":
        assert "<b>" not in page and "&lt;b&gt;&amp;" in page
    words = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", page,
                                                         flags=re.S)))
    if lang == "en":
        assert f"a loss of {currency} " in words
    else:
        assert "尚未结算完毕" in words and "百万" in page


def test_plans_that_name_no_unit_are_in_cny_as_before(plan_dirs, tmp_path):
    """A plan.json of format 3 (the unit only in its forecast's provenance) or older (no
    unit at all) reads as it did: CNY, the same report as a plan naming CNY."""
    props = read_plans(plan_dirs)
    assert all(p.doc["currency"] == "CNY" for p in props)
    old = []
    for d in plan_dirs:
        folder = shutil.copytree(d, tmp_path / d.name)
        doc = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
        del doc["currency"], doc["provenance"]["currency"]
        (folder / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
        write_manifest(folder, "plan", {})
        old.append(folder)
    for lang in LANGS:
        now, before = Report(props, lang), Report(read_plans(old), lang)
        assert before.currency == "CNY"
        assert now.verdict() == before.verdict() and now.summary() == before.summary()
        for name, frame in now.sheets().items():
            assert frame.equals(before.sheets()[name]), name
    assert "CNY" in " ".join(Report(props, "en").verdict())


def test_plans_in_different_units_are_refused(plan_dirs, tmp_path):
    folder = shutil.copytree(plan_dirs[1], tmp_path / "B")
    doc = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    doc["currency"] = "HKD"
    (folder / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
    write_manifest(folder, "plan", {})
    with pytest.raises(UserError, match=r"different money units .*'CNY'.*'HKD'"):
        read_plans([plan_dirs[0], folder])


def test_the_summary_names_the_unit_of_the_cap(plan_dirs):
    """Each proposal's summary sentence gives its cap in money like its deductible
    ("封顶线 300,000 元", "cap 300,000 CNY"), never a bare number."""
    props = read_plans(plan_dirs)
    for lang in LANGS:
        summary = " ".join(Report(props, lang).summary())
        cur = money_words("CNY", lang)["cur"]
        for p in props:
            cap = p.doc["plan"]["cap"]
            if cap != "none":
                word = "封顶线" if lang == "zh" else "cap"
                assert f"{word} {cap:,.0f} {cur}" in summary, (lang, summary)
