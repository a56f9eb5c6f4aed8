"""How sure the report is: the ranges of premium income and payouts are the scenarios'
(recomputed here with the evaluator), the backtest reads as sentences and a labelled
table of provenance's figures without duplicate rows, and an incomplete latest year is
said with its as-of date and completion, in both languages."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import openpyxl

from forecasting.forecast import Forecast
from forecasting.scheme.in_force import plan_from_dict
from optimization.evaluate import scenario_money
from optimization.solve import scenario_set
from optimization.space import load_space
from pipelines.report.document import Report, money, read_plans
from pipelines.report.sure import MEASURES, signed
from tests.pipelines.report.pages import Cells


def _scenario_ranges(plan_dirs, forecast_dir):
    """(income, payouts) expected and at 5 % and 95 % for today's plan and each proposal,
    from the evaluator's scenario money on the scenarios `ciplan optimize` draws."""
    fc, space = Forecast.load(forecast_dir), load_space()
    docs = [json.loads((d / "plan.json").read_text()) for d in plan_dirs]
    sq = plan_from_dict("sq", docs[0]["status_quo"]["plan"])
    sc = scenario_set(fc, space, sq)
    out = []
    for plan in [sq, *(plan_from_dict("p", d["plan"]) for d in docs)]:
        pay, income, _ = scenario_money(plan, fc, space.costs, sc)
        out.append((np.percentile(income, [5, 95]), np.percentile(pay, [5, 95])))
    return docs, out


def test_ranges_of_income_and_payouts_are_the_scenarios(report, plan_dirs, forecast_dir):
    lang, out = report
    docs, ranges = _scenario_ranges(plan_dirs, forecast_dir)
    page = (out / "report.html").read_text(encoding="utf-8")
    parser = Cells("sure")
    parser.feed(page)
    assert len(parser.rows) == 6, parser.labels  # income and payouts: expected, 5 %, 95 %
    kpis = [docs[0]["status_quo"]["kpis"], *(d["kpis"] for d in docs)]
    income_mid, income_lo, income_hi, pay_mid, pay_lo, pay_hi = map(np.array, parser.rows)
    np.testing.assert_allclose(income_mid, [k["premium_income"] for k in kpis], rtol=1e-12)
    np.testing.assert_allclose(pay_mid, [k["expected_payout"] for k in kpis], rtol=1e-12)
    for got, i in ((income_lo, 0), (income_hi, 1)):
        np.testing.assert_allclose(got, [r[0][i] for r in ranges], rtol=1e-9)
    for got, i in ((pay_lo, 0), (pay_hi, 1)):
        np.testing.assert_allclose(got, [r[1][i] for r in ranges], rtol=1e-9)
    assert (income_lo < income_hi).all() and (pay_lo < pay_mid).all() and (pay_mid < pay_hi).all()
    text = "".join(parser.texts)
    today_income, today_pay = ranges[0]
    for figure in (*today_income, *today_pay, kpis[0]["premium_income"]):
        assert money(figure) in text, (lang, figure)  # the sentence says today's ranges
    # the workbook keeps both ends as numbers
    sheet = openpyxl.load_workbook(out / "report.xlsx")["HowSure"]
    rows = [[float(v) for v in r[1:]] for r in sheet.iter_rows(min_row=2, values_only=True)]
    np.testing.assert_allclose(rows, parser.rows, rtol=1e-12)


def test_backtest_in_words_and_a_labelled_table(report, plan_dirs):
    lang, out = report
    backtest = json.loads((plan_dirs[0] / "plan.json").read_text())["provenance"]["backtest"]
    page = (out / "report.html").read_text(encoding="utf-8")
    table = Cells("backtest")
    table.feed(page)
    text = " ".join(table.texts)
    for metric, _model, _kind in MEASURES:  # people's words, not metric names
        assert metric not in text
    assert "claim-frequency" not in text and "claim-severity" not in text
    rows = [(label, tuple(np.round(v, 12))) for label, v in zip(table.labels, table.rows,
                                                                strict=True)]
    assert len(rows) == len(set(rows)) and len(set(table.labels)) == len(table.labels)
    # every figure is the backtest's: each model's own measures and the payouts under both
    shown = {v for r in table.rows for v in r if np.isfinite(v)}
    freq, sev = backtest["claim-frequency"], backtest["claim-severity"]
    for value in (freq["claimants_error"], freq["gini"], sev["severity_error"],
                  sev["gamma_deviance"], freq["payout_error"], sev["payout_error"]):
        assert value in shown, value
    assert shown <= {v for m in backtest.values() for v in m.values()}
    # and as a sentence: payouts back-tested within +x.x % (both backtests' figures)
    sure = " ".join(section_texts(page, "sure"))
    for value in (freq["payout_error"], sev["payout_error"], freq["claimants_error"],
                  sev["severity_error"]):
        assert signed(value) in sure, (lang, signed(value), sure)
    word = "回测" if lang == "zh" else "Back-tested"
    assert word in sure


def section_texts(page: str, section: str) -> list[str]:
    parser = Cells(section)
    parser.feed(page)
    return parser.texts


DEVELOPMENT = {"as_of": "2022-01-31", "year": 2021, "reported": 101_234_567.0,
               "completed": 112_345_678.0, "factor": 112_345_678.0 / 101_234_567.0,
               "low": 108_765_432.0, "high": 117_654_321.0, "method": "chain ladder",
               "level": 0.9}
METHOD_WORDS = {"en": ("chain ladder", "Bornhuetter-Ferguson"), "zh": ("链梯法", "BF 法")}


def test_an_incomplete_latest_year_is_said_in_history_and_how_sure(plan_dirs):
    """A hand-made provenance["development"]: its as-of date, year, settled and completed
    eligible cost, factor, range and method appear in the history section and in "how
    sure", in both languages, and in the workbook; without it nothing is said."""
    props = read_plans(plan_dirs)
    plain = {lang: Report(props, lang).html() for lang in ("en", "zh")}
    for lang in ("en", "zh"):
        assert "2022-01-31" not in plain[lang]
        assert "Completion" not in Report(props, lang).sheets()  # no sheet for a whole year
        for method, words in zip(("chain ladder", "Bornhuetter-Ferguson"),
                                 METHOD_WORDS[lang], strict=True):
            dev = DEVELOPMENT | {"method": method}
            made = copy.deepcopy(props)
            for p in made:
                p.doc.setdefault("provenance", {})["development"] = dev
            report = Report(made, lang)
            page = report.html()
            for section in ("history", "sure"):
                text = "".join(section_texts(page, section))
                for figure in ("2022-01-31", "2021", money(dev["reported"]),
                               money(dev["completed"]), money(dev["low"]),
                               money(dev["high"]), f"{dev['factor']:.3f}", words):
                    assert figure in text, (lang, section, figure)
            completion = report.sheets()["Completion"]
            settled = "Eligible cost settled (CNY)" if lang == "en" else "已结算合规费用（元）"
            assert completion[settled].tolist() == [dev["reported"]]
            assert "2022-01-31" in completion.iloc[0].tolist()


def test_chinese_money_and_bands_as_a_negotiator_writes_them(report):
    """Member-impact bands in 万元 (0–1.5万元, 1.5万–5万元, …, 43.53万元以上), cost levels
    in 万元, member groups in Chinese, money in sentences in 元."""
    lang, out = report
    if lang != "zh":
        return
    page = (out / "report.html").read_text(encoding="utf-8")
    impact = "".join(section_texts(page, "impact"))
    bands = re.findall(r"\d+(?:\.\d+)?万?–\d+(?:\.\d+)?万元|\d+(?:\.\d+)?万元以上", impact)
    assert "0–1.5万元" in bands and "1.5万–5万元" in bands, bands
    assert any(b.endswith("以上") for b in bands), bands
    assert "普通参保人" in impact and "特殊人群" in impact and "ordinary" not in impact
    assert not re.search(r"\d,\d{3}–", impact)  # no English bands left
    member = Cells("member")
    member.feed(page)
    assert member.labels == ["2万元", "5万元", "10万元", "20万元", "50万元"]
    verdict = "".join(section_texts(page, "verdict"))
    assert re.search(r"\d 元", verdict) and "CNY" not in page


def test_sources_are_words_not_a_python_dict(report, plan_dirs):
    _lang, out = report
    prov = json.loads((plan_dirs[0] / "plan.json").read_text())["provenance"]
    text = "".join(section_texts((out / "report.html").read_text(encoding="utf-8"),
                                 "provenance"))
    assert "{" not in text and "'" not in text, text
    for name, version in prov["model_versions"].items():
        assert f"{name} {version}" in text
