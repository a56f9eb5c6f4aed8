"""The contract's term, year by year (DESIGN §6): each year of the term projected from the
forecast of its first year, priced exactly and settled scenario by scenario.

Year t of the term (t = 0 is the forecast year):
- cohorts age a year each year (a band_width-th of each band moves up) and the insured
  total follows the enrolment trend; each cohort keeps its claim frequency per
  member-year, so claimants follow the mix;
- costs per claimant follow the cost trend: X_t = X exp(trend t). A plan then pays
  E[g(X_t)] = a E[g_a(X)] with a = exp(trend t) and g_a the plan with every money term
  divided by a, so expected payouts stay exact layer prices;
- the premium is indexed and the deductible re-set by the term's rules;
- scenarios: each year's own process draws (claims of different years are independent)
  times a cost level that walks: exp(sum of t independent yearly trend errors), so the
  uncertainty of the trend grows with the horizon; every scenario is settled each year and
  summed over the term. The first year is the forecast year itself: given the scenarios
  the optimiser settled (`scenarios`), it is priced from their sorted sums rather than
  drawn again; later years draw only the costs that reach the plan's lowest deductible at
  each scenario's own cost level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.forecast import Forecast, ScenarioSet, interval
from forecasting.models.enrollment import age_one_year
from forecasting.scheme.plan import Plan
from optimization.contract import settle
from optimization.evaluate import scenario_payouts
from optimization.objectives import cvar_rows
from optimization.space import ContractTerms, PlanSpace

RANGE = (5, 95)


@dataclass(frozen=True)
class Projection:
    """Per year and over the term (money of the data): `years` has one row per year and a
    last row "term" (sums); `scenarios` the settlement of every scenario and year."""

    years: pd.DataFrame
    scenarios: pd.DataFrame


def history_trends(forecast: Forecast) -> tuple[float, float, float]:
    """(cost trend, its yearly spread, enrolment trend) as log rates a year, from the
    forecast's history: eligible cost above the deductible per insured, and insured."""
    hist = pd.DataFrame(forecast.provenance.get("history", []))
    if len(hist) < 2 or "eligible_above_deductible" not in hist:
        return 0.0, 0.0, 0.0
    years = hist["year"].to_numpy(float)
    cost = np.log(hist["eligible_above_deductible"].to_numpy(float)
                  / hist["insured"].to_numpy(float))
    slope, level = np.polyfit(years, cost, 1)
    resid = cost - (level + slope * years)
    spread = float(np.sqrt((resid**2).sum() / max(len(years) - 2, 1)))
    enrol = float(np.polyfit(years, np.log(hist["insured"].to_numpy(float)), 1)[0])
    return float(slope), spread, enrol


def scaled(plan: Plan, a: float) -> Plan:
    """The plan with every money term divided by a (so that a x its payout on X is the
    plan's payout on a X)."""
    special = plan.special if plan.special.cap is None else replace(
        plan.special, cap=plan.special.cap / a)
    return replace(plan, deductible=plan.deductible / a,
                   band_edges=tuple(e / a for e in plan.band_edges),
                   cap=None if plan.cap is None else plan.cap / a, special=special)


def expected_payout(fc: Forecast, plan: Plan, a: float, sd: float) -> float:
    """E over the cost level a exp(W), W ~ N(-sd^2/2, sd^2) (mean level a), of the plan's
    exact expected payout at that level: Gauss-Hermite quadrature on 9 nodes (exact for
    sd = 0). Payouts are not linear in the cost level (deductible, cap), so an uncertain
    trend moves the expected payout too."""
    if sd <= 0:
        return a * fc.expected_payout(scaled(plan, a))
    nodes, weights = np.polynomial.hermite_e.hermegauss(9)
    levels = a * np.exp(sd * nodes - sd**2 / 2)
    values = [lv * fc.expected_payout(scaled(plan, lv)) for lv in levels]
    return float(np.dot(weights, values) / weights.sum())


def year_plans(plan: Plan, space: PlanSpace, income: float) -> list[Plan]:
    """The plan of each year of the term: premium indexed, deductible by the rule."""
    term, out = space.term, []
    index = term.income_growth if term.premium_index == "income" else term.premium_index
    for t in range(term.years):
        p = plan.with_(premium_per_capita=plan.premium_per_capita * (1 + index) ** t)
        if term.deductible_rule == "income" and t > 0:
            # `income` is the year before the term's first; year t's rule reads year t-1's
            last = income * (1 + term.income_growth) ** t
            d = space.constraints.deductible_income_share * last
            if d < p.band_edges[0]:
                p = p.with_(deductible=d)
        out.append(p)
    return out


def cohorts_of_year(forecast: Forecast, t: int, enrol: float, ageing: bool) -> pd.DataFrame:
    """The forecast's cohorts t years on: aged, insured total on its trend, claimants at
    each cohort's frequency per member-year."""
    base = forecast.cohorts
    cur = base.copy()
    for _ in range(t if ageing else 0):
        aged = age_one_year(cur, forecast.spec)
        cur = base.drop(columns=["insured", "exposure"]).merge(
            aged, on=forecast.spec.columns, how="left").fillna({"insured": 0, "exposure": 0})
    total = base["insured"].sum() * np.exp(enrol * t)
    factor = total / cur["insured"].sum()
    cur["insured"] = cur["insured"] * factor
    cur["exposure"] = cur["exposure"] * factor
    cur["claimants"] = cur["frequency"] * cur["exposure"]
    return cur


def project(forecast: Forecast, plan: Plan, space: PlanSpace, terms: ContractTerms,
            income: float, n: int = 1000, seed: int = 0,
            scenarios: ScenarioSet | None = None) -> Projection:
    """The term of `plan` (see module doc); `income` is last year's per-capita disposable
    income (for the deductible rule); `scenarios`: n scenarios of `forecast` (the ones the
    optimiser settled) on which the first year is settled when they cover the plan. Kept
    on the forecast: the same projection asked again (today's plan, for each proposal of a
    run) is drawn once."""
    key = (repr(plan), repr(terms), float(income), int(n), int(seed), space.model_dump_json(),
           None if scenarios is None else id(scenarios))
    kept = forecast.__dict__.setdefault("_ciplan_projections", {})
    if key not in kept:  # the scenarios are kept beside it, so their id stays theirs
        kept[key] = (_project(forecast, plan, space, terms, income, n, seed, scenarios),
                     scenarios)
    found = kept[key][0]
    return Projection(found.years.copy(), found.scenarios.copy())


def year_payouts(fc: Forecast, plan: Plan, level: np.ndarray, seed: int,
                 given: ScenarioSet | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(total payout, insured head count) of each scenario of a year whose cost level is
    `level` (one per scenario, relative to the forecast year). From `given` (scenarios of
    the forecast year) when the level is 1 and they cover the plan: priced from their
    sorted sums, the year the optimiser settled. Otherwise drawn, each scenario and cohort
    only the costs that reach the cohort's deductible at the scenario's level (a cost
    below it pays nothing, so the payouts are the same as from every cost; most costs of
    ordinary members lie between the special groups' deductible and theirs)."""
    n = len(level)
    if given is not None and given.n == n and np.all(level == 1.0) and given.covers(plan):
        pay = scenario_payouts(plan, given)
        heads = np.full(n, fc.insured) if given.insured is None else np.asarray(
            given.insured, float)
        return pay, heads
    return fc.payouts_as_drawn(plan, n, seed, level=level)


def _project(forecast: Forecast, plan: Plan, space: PlanSpace, terms: ContractTerms,
             income: float, n: int, seed: int, given: ScenarioSet | None) -> Projection:
    term, costs = space.term, space.costs
    trend, spread, enrol = history_trends(forecast)
    trend = trend if term.cost_trend == "data" else term.cost_trend
    spread = spread if term.cost_trend_sd == "data" else term.cost_trend_sd
    enrol = enrol if term.enrolment_trend == "data" else term.enrolment_trend
    plans = year_plans(plan, space, income)
    rng = np.random.default_rng(seed)
    # the trend's error accumulates year by year; centred so that the cost level's mean is
    # the trend's (E[exp(W_t)] = 1), as the exact expected payouts assume
    steps = rng.normal(0.0, spread, (term.years, n))
    steps[0] = 0.0  # the forecast year's own uncertainty is in its scenarios
    walk = np.cumsum(steps, axis=0) - (spread**2 / 2) * np.arange(term.years)[:, None]
    rows, scen_rows = [], []
    for t, p in enumerate(plans):
        fc = replace(forecast, cohorts=cohorts_of_year(forecast, t, enrol, term.ageing))
        a = float(np.exp(trend * t))
        pay_s, heads = year_payouts(fc, p, a * np.exp(walk[t]), seed + 1 + t,
                                    given if t == 0 else None)
        insured = fc.insured
        income_s = p.premium_per_capita * heads
        opex_s = costs.opex_fixed + costs.opex_share * income_s
        s = settle(pay_s, income_s, opex_s, terms)
        expected = expected_payout(fc, p, a, spread * np.sqrt(t))
        premium_income = p.premium_per_capita * insured
        exp_before = premium_income - expected - costs.opex_fixed - costs.opex_share * (
            premium_income)
        rows.append(_year_row(forecast.year + t, p, insured, expected, exp_before, s,
                              space.risk.cvar_level))
        scen_rows.append(pd.DataFrame({
            "scenario": np.arange(n), "year": forecast.year + t, "payout": pay_s,
            "loss_before": -s.before, "surplus_returned": s.returned,
            "fund_share": s.fund_share, "insurer_result_after": s.after}))
    table = pd.concat(scen_rows, ignore_index=True)
    years = pd.DataFrame(rows)
    years = pd.concat([years, pd.DataFrame([_term_row(years, table, space.risk.cvar_level)])],
                      ignore_index=True)
    return Projection(years, table)


def _ranges(name: str, result: np.ndarray, level: float, expected: float
            ) -> dict[str, float]:
    """The 90 % range of the loss that holds `expected` (CNY), P(loss), CVaR."""
    loss = -np.asarray(result, dtype="float64")
    lo, hi = interval(loss, expected, (RANGE[1] - RANGE[0]) / 100)
    return {f"loss_p05_{name}": float(lo), f"loss_p95_{name}": float(hi),
            f"prob_loss_{name}": float((loss > 0).mean()),
            f"cvar_loss_{name}": float(cvar_rows(loss[None, :], level)[0])}


def _year_row(year: int, plan: Plan, insured: float, payout: float, before: float, s,
              level: float) -> dict:
    return {"year": str(year), "premium_per_capita": plan.premium_per_capita,
            "deductible": plan.deductible, "insured": insured, "expected_payout": payout,
            "expected_loss_before": -before,
            "expected_loss_after": float(-s.after.mean()),  # over the scenarios (settlement)
            "fund_topup": float(s.fund_share.mean()), "fund_refund": float(s.returned.mean()),
            **_ranges("before", s.before, level, -before),
            **_ranges("after", s.after, level, float(-s.after.mean()))}


def _term_row(years: pd.DataFrame, table: pd.DataFrame, level: float) -> dict:
    """Sums over the term; ranges of each scenario's sum over its years."""
    by = table.groupby("scenario")[["loss_before", "insurer_result_after", "fund_share",
                                    "surplus_returned"]].sum()
    row = {"year": "term"}
    for col in ("insured", "expected_payout", "expected_loss_before", "expected_loss_after",
                "fund_topup", "fund_refund"):
        row[col] = float(years[col].sum())
    row |= _ranges("before", -by["loss_before"].to_numpy(), level,
                   row["expected_loss_before"])
    row |= _ranges("after", by["insurer_result_after"].to_numpy(), level,
                   row["expected_loss_after"])
    return row


def term_break_even(years: pd.DataFrame, space: PlanSpace) -> float:
    """The lowest first-year premium per capita (on the negotiating step) at which the
    term's expected loss before settlement is <= 0, the premium indexed as the term says:
    the loss is linear in it, sum_t (payout_t + fixed opex) - (1 - opex share) p sum_t
    (index_t insured_t), so the answer is exact."""
    rows = years[years["year"] != "term"]
    index = rows["premium_per_capita"].to_numpy(float) / float(rows["premium_per_capita"].iloc[0])
    costs = space.costs
    need = (rows["expected_payout"].sum() + costs.opex_fixed * len(rows)) / (
        (1 - costs.opex_share) * float((index * rows["insured"].to_numpy(float)).sum()))
    step = space.premium.step
    return float(np.ceil(round(need / step, 9)) * step)
