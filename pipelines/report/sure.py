"""How sure the report is: the ranges of premium income and payouts (plan.json
"kpis"."ranges"), the models' backtest accuracy as sentences and as a labelled table
(provenance "backtest"), and how complete the latest year of data is (provenance
"development", present when claims were still to be settled at the data's as-of date)."""

from __future__ import annotations

import math

from pipelines.report.labels import t

FREQUENCY, SEVERITY = "claim-frequency", "claim-severity"
MODELS = (FREQUENCY, SEVERITY)
# The backtest measures the report shows: (metric, the model it judges or None for the
# whole forecast, how it reads). "signed": forecast / actual - 1 (or the loss error as a
# share of premium income); "mean-abs": a mean absolute relative error; "score": a
# deviance or Gini, read by comparing models.
MEASURES = (("claimants_error", FREQUENCY, "signed"), ("poisson_deviance", FREQUENCY, "score"),
            ("gini", FREQUENCY, "score"), ("severity_error", SEVERITY, "signed"),
            ("gamma_deviance", SEVERITY, "score"), ("layer_error", SEVERITY, "mean-abs"),
            ("above_deductible_error", None, "signed"), ("payout_error", None, "signed"),
            ("loss_error_share", None, "signed"))
# what the workbook's Completion sheet shows of provenance "development"
DEVELOPMENT_KEYS = ("as_of", "year", "reported", "completed", "factor", "low", "high",
                    "method", "level")
METHODS = {"chain ladder": {"en": "the chain ladder", "zh": "链梯法"},
           "Bornhuetter-Ferguson": {"en": "Bornhuetter-Ferguson", "zh": "BF 法"}}


MINUS = "\u2212"  # a true minus sign, as in print


def signed(x: float) -> str:
    """A relative error with its sign: +4.4 %, or -0.6 % written with MINUS."""
    return f"{x:+.1%}".replace("-", MINUS).replace("%", " %")


def finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def backtest_cells(backtest: dict) -> list[tuple[str, str, list[float | None]]]:
    """(metric, how it reads, [value under the frequency model's backtest, under the
    severity model's]) of each measure the backtest holds: a model's own measures only
    under it (the other's backtest repeats the baseline's), whole-forecast measures under
    both; a measure neither backtest has is left out."""
    out = []
    for metric, model, kind in MEASURES:
        values = [backtest.get(m, {}).get(metric) if model in (None, m) else None
                  for m in MODELS]
        values = [float(v) if finite(v) else None for v in values]
        if any(v is not None for v in values):
            out.append((metric, kind, values))
    return out


def formatted(value: float | None, kind: str) -> str:
    """A backtest value as the table shows it."""
    if value is None:
        return "–"
    if kind == "signed":
        return signed(value)
    if kind == "mean-abs":
        return f"{value:.1%}".replace("%", " %")
    return f"{value:.4g}"


def within(values: list[float | None], lang: str) -> str | None:
    """The errors of one measure in words: one figure, or the two backtests' figures when
    they differ at the shown precision."""
    # sorted as numbers, then the figures that read the same once
    shown = list(dict.fromkeys(signed(v) for v in sorted(v for v in values if v is not None)))
    if not shown:
        return None
    return shown[0] if len(shown) == 1 else t("from_to", lang, a=shown[0], b=shown[-1])


def backtest_sentence(backtest: dict, lang: str) -> str | None:
    """The backtest in one sentence: claimants, cost per claimant, payouts and the loss,
    each forecast against what happened (None without a backtest)."""
    cells = {metric: values for metric, _, values in backtest_cells(backtest)}
    parts = [t(f"bt_{metric}", lang, x=text) for metric in
             ("claimants_error", "severity_error", "payout_error", "loss_error_share")
             if (text := within(cells.get(metric, []), lang)) is not None]
    if not parts:
        return None
    return t("bt_sentence", lang, parts=t("list_sep", lang).join(parts))


def method_words(method: str, lang: str) -> str:
    """A development method as the report's language names it."""
    return METHODS.get(method, {}).get(lang, method)


def development_row(dev: dict, lang: str, currency: str) -> dict:
    """Provenance "development" as the workbook's Completion row (labels as keys)."""
    return {"": t("dev_key", lang)} | {
        t(f"dev_{k}", lang, currency): method_words(v, lang) if k == "method" else v
        for k, v in dev.items() if k in DEVELOPMENT_KEYS}


def development_sentence(dev: dict | None, money, lang: str, currency: str) -> str | None:
    """How complete the latest year is (provenance "development"), None when the data
    are complete."""
    if not dev:
        return None
    method = method_words(dev.get("method", "?"), lang)
    return t("dev_sentence", lang, currency, year=dev["year"], as_of=dev["as_of"],
             reported=money(dev["reported"]), completed=money(dev["completed"]),
             method=method, factor=f"{dev['factor']:.3f}",
             level=f"{dev.get('level', 0.9):.0%}".replace("%", " %"),
             low=money(dev["low"]), high=money(dev["high"]))


def range_rows(columns, money) -> list[tuple[str, list[tuple[float, str]]]]:
    """Expected premium income and payouts and both ends of their 5–95 % ranges for
    today's plan and each proposal (label keys, then (value, text) per column); plans
    written before ranges were recorded give no rows."""
    if not all("ranges" in k for _, _, k in columns):
        return []
    rows = []
    for key, expected in (("premium_income", "premium_income"),
                          ("payouts", "expected_payout")):
        rows.append((f"sure_{key}", [(k[expected], money(k[expected])) for _, _, k in columns]))
        for end, i in (("p05", 0), ("p95", 1)):
            rows.append((f"sure_{key}_{end}",
                         [(k["ranges"][key][i], money(k["ranges"][key][i]))
                          for _, _, k in columns]))
    return rows


def range_sentence(kpis: dict, money, result, lang: str, currency: str) -> str | None:
    """Today's premium income, payouts and result with their 5–95 % ranges in words."""
    ranges = kpis.get("ranges")
    if not ranges:
        return None
    inc, pay = ranges["premium_income"], ranges["payouts"]
    return t("sure_sentence", lang, currency, inc=money(kpis["premium_income"]),
             inc_lo=money(inc[0]), inc_hi=money(inc[1]), pay=money(kpis["expected_payout"]),
             pay_lo=money(pay[0]), pay_hi=money(pay[1]), lo=result(kpis["loss_p05"]),
             hi=result(kpis["loss_p95"]))
