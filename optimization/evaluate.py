"""The exact evaluator: price any plan on a Forecast without the LP. Every figure a report
shows comes from here; the optimiser's objective must agree with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from forecasting.forecast import Forecast, ScenarioSet, interval
from forecasting.scheme.plan import Plan, member_payouts
from optimization.contract import settle, summary
from optimization.pricing import scenario_sums, schedules_of
from optimization.space import ContractTerms, Costs

KPI_NAMES = ("premium_per_capita", "insured", "premium_income", "expected_payout",
             "operating_cost", "expected_loss", "loss_p05", "loss_p95", "loss_ratio",
             "effective_ratio", "prob_loss", "cvar95_loss")


@dataclass(frozen=True)
class PlanKPIs:
    """A plan's expected year on the Forecast. Money in CNY; loss > 0: the insurer loses."""

    premium_per_capita: float
    insured: float
    premium_income: float
    expected_payout: float
    operating_cost: float
    expected_loss: float
    loss_p05: float
    loss_p95: float
    loss_ratio: float
    effective_ratio: float
    prob_loss: float
    cvar95_loss: float
    expected_above_deductible: float
    payout_at: dict[str, float]          # annual cost level (CNY) -> payout of a member
    payout_by_age: dict[str, float]      # age band -> expected payouts (CNY)
    settlement: dict[str, float] | None = None  # after the contract settles (scenarios)

    def as_dict(self) -> dict:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The KPIs with fixed names, for MLflow metrics and side-by-side tables."""
        return {k: float(getattr(self, k)) for k in KPI_NAMES}


def cvar(losses: np.ndarray, level: float) -> float:
    """Rockafellar-Uryasev CVaR: min over eta of eta + E[(L - eta)+] / (1 - level).

    The minimum sits at a scenario's loss, so trying each gives it exactly, as the LP does.
    """
    losses = np.sort(np.asarray(losses, dtype="float64"))
    excess = np.maximum(losses[None, :] - losses[:, None], 0).mean(axis=1)
    return float(np.min(losses + excess / (1 - level)))


def scenario_money(plan: Plan, forecast: Forecast, costs: Costs, scenarios: ScenarioSet
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(payout, premium income, operating cost) of each scenario (CNY): the insured count
    of a scenario is its own when the scenarios draw enrolment, else the forecast's."""
    insured = getattr(scenarios, "insured", None)
    insured = np.full(scenarios.n, forecast.insured) if insured is None else np.asarray(
        insured, dtype="float64")
    income = plan.premium_per_capita * insured
    return scenario_payouts(plan, scenarios), income, costs.opex_fixed + costs.opex_share * income


def scenario_payouts(plan: Plan, scenarios: ScenarioSet) -> np.ndarray:
    """Total payout of `plan` in each scenario (CNY), priced from the scenarios' sorted
    sums of min(cost, t) (built once per scenario set) at the plan's band edges and cap
    point, not by paying every simulated cost again: the same sums, added in another
    order. ValueError when a deductible lies below the scenarios' floor."""
    general, special = schedules_of(plan)
    ordinary, specials = scenario_sums(scenarios)
    return (ordinary.payout(general) + specials.payout(special))[0]


def evaluate_plan(plan: Plan, forecast: Forecast, costs: Costs,
                  scenarios: ScenarioSet | None = None,
                  levels: tuple[float, ...] = (20_000.0, 50_000.0, 100_000.0, 200_000.0,
                                               500_000.0),
                  cvar_level: float = 0.95, terms: ContractTerms | None = None) -> PlanKPIs:
    """Every KPI of `plan` on `forecast` (scenarios give the range, P(loss > 0) and CVaR;
    with contract terms, the same after settlement and the fund's top-up and refund)."""
    by_cohort = forecast.payout_by_cohort(plan)
    payout = float(by_cohort.sum())
    income = plan.premium_per_capita * forecast.insured
    opex = costs.opex_fixed + costs.opex_share * income
    loss = payout + opex - income
    above = forecast.expected_above_deductible(plan)
    settled = None
    if scenarios is not None:
        pay_s, income_s, opex_s = scenario_money(plan, forecast, costs, scenarios)
        losses = pay_s + opex_s - income_s
        p05, p95 = interval(losses, loss)  # 90 %, holding the expected loss
        prob, tail = float((losses > 0).mean()), cvar(losses, cvar_level)
        if terms is not None:
            settled = summary(settle(pay_s, income_s, opex_s, terms), cvar_level)
            # before settlement the result is the plan's own: its exact expected loss and
            # the range holding it, as the KPIs and the term's first year say (the mean
            # over the scenarios differs by their noise, on a small city in sign)
            settled |= {"expected_loss_before": loss, "loss_p05_before": float(p05),
                        "loss_p95_before": float(p95)}
    else:
        p05 = p95 = prob = tail = float("nan")
    bands = forecast.cohorts["age_band"].to_numpy()
    by_age = {forecast.spec.label(int(b)): float(by_cohort[bands == b].sum())
              for b in np.unique(bands)}
    return PlanKPIs(
        premium_per_capita=plan.premium_per_capita, insured=forecast.insured,
        premium_income=income, expected_payout=payout, operating_cost=opex,
        expected_loss=loss, loss_p05=float(p05), loss_p95=float(p95),
        loss_ratio=payout / income, effective_ratio=payout / above, prob_loss=prob,
        cvar95_loss=tail, expected_above_deductible=above,
        payout_at={f"{x:g}": float(member_payouts(plan, np.array([x]), np.array([False]))[0])
                   for x in levels},
        payout_by_age=by_age, settlement=settled,
    )


def _partial_mean(sev, x: np.ndarray) -> np.ndarray:
    """E[X 1{X < x}] per claimant (CNY), from the limited expected value."""
    x = np.asarray(x, dtype="float64")
    lev = np.asarray(sev.lev(x), dtype="float64")
    tail = np.where(np.isfinite(x), x * (1 - np.asarray(sev.cdf(np.where(np.isfinite(x), x,
                                                                          0.0)))), 0.0)
    return lev - tail


def _segments(new: Plan, old: Plan, bands: np.ndarray) -> np.ndarray:
    """Every cost where the difference of two schedules can bend or a band starts."""
    points = [0.0, *bands]
    for plan in (new, old):
        points += [plan.deductible, *plan.band_edges, plan.capped_cost()]
    pts = np.unique(np.array(points, dtype="float64"))
    return np.append(pts[np.isfinite(pts)], np.inf)


def _band_of(x: np.ndarray, bands: np.ndarray) -> np.ndarray:
    return np.searchsorted(bands, x, side="right")


def member_impact(new: Plan, old: Plan, forecast: Forecast, bands: tuple[float, ...]
                  ) -> pd.DataFrame:
    """Who gains and who loses against today, in expectation: per cohort and annual-cost
    band, the claimants whose payout rises or falls and the total change (CNY). The
    difference of two piecewise-linear schedules is linear between their breakpoints, so
    each piece is priced exactly from the cohort's severity."""
    edges = np.array(sorted(bands), dtype="float64")
    rows = []
    special = forecast._special()
    for c, (n, sev) in enumerate(zip(forecast.cohorts["claimants"], forecast.severities,
                                     strict=True)):
        a, b = (new.for_special_group(), old.for_special_group()) if special[c] else (new, old)
        pts = _segments(a, b, edges)
        lo, hi = pts[:-1], pts[1:]
        far = np.where(np.isfinite(hi), hi, lo + 1.0)
        d_lo = a.payout(lo) - b.payout(lo)
        slope = ((a.payout(far) - b.payout(far)) - d_lo) / (far - lo)
        f_lo = np.asarray(sev.cdf(lo), dtype="float64")
        f_hi = np.where(np.isfinite(hi), np.asarray(sev.cdf(np.where(np.isfinite(hi), hi, 0.0))),
                        1.0)
        m = _partial_mean(sev, hi) - _partial_mean(sev, lo)
        change = (d_lo - slope * lo) * (f_hi - f_lo) + slope * m
        # where inside the piece the difference is positive / negative
        root = np.where(slope != 0, lo - d_lo / np.where(slope != 0, slope, 1.0), np.nan)
        inside = (root > lo) & (root < hi)
        f_root = np.where(inside, np.asarray(sev.cdf(np.where(inside, root, 0.0))), np.nan)
        gain = np.where(inside, np.where(slope > 0, f_hi - f_root, f_root - f_lo),
                        np.where((d_lo > 0) | ((d_lo == 0) & (slope > 0)), f_hi - f_lo, 0.0))
        lose = np.where(inside, (f_hi - f_lo) - gain,
                        np.where((d_lo < 0) | ((d_lo == 0) & (slope < 0)), f_hi - f_lo, 0.0))
        for j in range(len(lo)):
            rows.append({"cohort": c, "band": int(_band_of(np.array([lo[j]]), edges)[0]),
                         "claimants": n * (f_hi[j] - f_lo[j]), "gain": n * gain[j],
                         "lose": n * lose[j], "change": n * change[j]})
    frame = pd.DataFrame(rows)
    cohorts = forecast.cohorts.reset_index(drop=True)
    frame["age_band"] = cohorts["age_band"].to_numpy()[frame["cohort"]]
    frame["special_group"] = special[frame["cohort"].to_numpy()]
    return frame.drop(columns="cohort")


def impact_table(frame: pd.DataFrame, bands: tuple[float, ...], label) -> pd.DataFrame:
    """The impact summed by annual-cost band, by age band and by member group: expected
    claimants, those paid more, those paid less, total change and change per claimant."""
    edges = [0.0, *sorted(bands), np.inf]
    names = {i: f"{edges[i]:,.0f}–" + ("" if np.isinf(edges[i + 1]) else f"{edges[i + 1]:,.0f}")
             for i in range(len(edges) - 1)}
    parts = []
    for by, key, name in (("cost_band", "band", names.get), ("age_band", "age_band", label),
                          ("group", "special_group",
                           lambda s: "special" if s else "ordinary")):
        g = frame.groupby(key, as_index=False)[["claimants", "gain", "lose", "change"]].sum()
        g.insert(0, "by", by)
        g.insert(1, "key", [name(v) for v in g.pop(key)])
        parts.append(g)
    out = pd.concat(parts, ignore_index=True)
    out["change_per_claimant"] = out["change"] / out["claimants"].where(out["claimants"] > 0)
    return out
