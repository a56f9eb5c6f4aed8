"""The member-benefit and contract rules, one registry entry each (DESIGN §4).

A rule says, in one place: its name and label key, the unit of its right-hand side in
words, whether the configuration switches it on, its exact check on priced plans (a mask
over the plans of one combo), the premium range it allows (for rules on the premium), and
how it enters the linear programme (for continuous ratios and shadow prices). Adding a
rule touches this file only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimization.context import Context
from optimization.milp import LP, Row, no_worse_rows
from optimization.pricing import Prices, Schedule, schedules_of, tol
from optimization.space import PlanSpace


@dataclass(frozen=True)
class Rule:
    """One rule (see module doc). `check` returns the plans it allows; `premium` the lowest
    and highest premium per capita (CNY) it allows for each plan; `lp` its rows in the
    linear programme of one combo (the size of one natural unit of each right-hand side
    makes duals read in `unit`)."""

    name: str
    unit: str                                   # of the right-hand side, in words
    enabled: Callable[[PlanSpace], bool]
    check: Callable[[Context, Prices], np.ndarray] | None = None
    premium: Callable[[Context, Prices], tuple[np.ndarray, np.ndarray]] | None = None
    lp: Callable[[Context, LP], list[Row] | None] | None = None  # None: the combo breaks it
    # (a plan's value, the rule's limit) in the rule's own terms, for saying how far a plan
    # that breaks it (today's, see broken_by) is from it; the plan is the first of prices
    figures: Callable[[Context, Prices], tuple[float, float]] | None = None


def _effective(ctx: Context, p: Prices) -> np.ndarray:
    return p.payout >= ctx.effective_floor * p.above - tol(p.above)


def _nominal(ctx: Context, p: Prices) -> np.ndarray:
    return (p.ratios >= ctx.space.constraints.nominal_ratio_floor - 1e-12).all(axis=1)


def _deductible(ctx: Context, p: Prices | None, deductible: float | None = None
                ) -> np.ndarray:
    c = ctx.space.constraints
    d = p.combo.deductible if deductible is None else deductible
    ok = d <= c.deductible_income_share * ctx.space.costs.disposable_income
    return np.full(1 if p is None else len(p.payout), ok)


def _deductible_mask(ctx: Context, p: Prices) -> np.ndarray:
    return _deductible(ctx, p)


def _increasing(ctx: Context, p: Prices) -> np.ndarray:
    return (np.diff(p.ratios, axis=1) >= -1e-12).all(axis=1)


def _no_worse(ctx: Context, p: Prices) -> np.ndarray:
    today = schedules_of(ctx.status_quo)
    return no_worse_mask(p.general, today[0]) & no_worse_mask(p.special, today[1])


def no_worse_mask(new: Schedule, today: Schedule) -> np.ndarray:
    """Plans whose schedule pays at least today's at every annual cost from 0 upwards.

    Both are piecewise linear, so the difference is too: it is >= 0 everywhere when it is
    at every breakpoint of either schedule and its slope beyond the last one is >= 0."""
    fixed = np.unique(np.concatenate([today.breakpoints()[0], [0.0]]))
    fixed = fixed[np.isfinite(fixed)]
    own = new.breakpoints()
    # a payout is at most the cost it is paid at: rounding is a share of that cost
    ok = (new.pay(fixed) >= today.pay(fixed)[0][None, :] - tol(fixed)[None, :]).all(axis=1)
    for j in range(own.shape[1]):
        y = own[:, j]
        finite = np.isfinite(y)
        y = np.where(finite, y, 0.0)
        ok &= ~finite | (new.pay_at(y) >= today.pay(y)[0] - tol(y))
    return ok & (new.final_slope() >= today.final_slope()[0] - 1e-12)


def _profit_cap(ctx: Context, p: Prices) -> tuple[np.ndarray, np.ndarray]:
    """Surplus <= share x premium income: premium <= (payout + fixed opex) /
    ((1 - opex share - profit share) x insured)."""
    share = ctx.space.contract.profit_cap_share
    denom = (1 - ctx.opex_share - share) * ctx.insured
    hi = (p.payout + ctx.opex_fixed) / denom if denom > 0 else np.full(len(p.payout), np.inf)
    return np.full(len(p.payout), -np.inf), hi


def _effective_figures(ctx: Context, p: Prices) -> tuple[float, float]:
    return float(p.payout[0] / p.above) if p.above > 0 else 0.0, ctx.effective_floor


def _nominal_figures(ctx: Context, p: Prices) -> tuple[float, float]:
    return float(p.ratios[0].min()), ctx.space.constraints.nominal_ratio_floor


def _deductible_figures(ctx: Context, p: Prices) -> tuple[float, float]:
    c = ctx.space.constraints
    return p.combo.deductible, c.deductible_income_share * ctx.space.costs.disposable_income


def _increasing_figures(ctx: Context, p: Prices) -> tuple[float, float]:
    """The largest fall of the ratio from one band to the next (a share), and 0."""
    return float(max(-np.diff(p.ratios[0]).min(initial=0.0), 0.0)), 0.0


def _profit_cap_figures(ctx: Context, p: Prices) -> tuple[float, float]:
    """The plan's premium per capita and the highest the cap allows at its payout."""
    return ctx.status_quo.premium_per_capita, float(_profit_cap(ctx, p)[1][0])


def today_breaks(ctx: Context, today: Prices, rules: list[Rule]) -> list[dict[str, object]]:
    """The rules today's plan itself breaks (`today`: it priced), each {"rule", "value",
    "limit"} (Rule.figures: shares as fractions, money as amounts) and "premium": whether
    the rule is on the premium (a plan rule is on the benefits)."""
    premium = ctx.status_quo.premium_per_capita

    def broken(rule: Rule) -> bool:
        if rule.check is not None:
            return bool(violations(ctx, today, [rule]))
        lo, hi = rule.premium(ctx, today)
        return not lo[0] - tol(premium) <= premium <= hi[0] + tol(premium)

    out = []
    for rule in (r for r in rules if r.figures is not None and broken(r)):
        value, limit = rule.figures(ctx, today)
        out.append({"rule": rule.name, "value": value, "limit": limit,
                    "premium": rule.check is None})
    return out


def _effective_lp(ctx: Context, lp: LP) -> list[Row]:
    return [Row("effective_ratio", lp.payout_hi, ">=", ctx.effective_floor * lp.above,
                0.01 * lp.above, "point of effective ratio", "effective ratio floor")]


def _nominal_lp(ctx: Context, lp: LP) -> list[Row]:
    floor = ctx.space.constraints.nominal_ratio_floor
    return [Row(f"nominal_ratio_{k}", rk, ">=", floor, 0.01, "point of nominal ratio",
                f"ratio of band {k + 1}") for k, rk in enumerate(lp.ratios)]


def _deductible_lp(ctx: Context, lp: LP) -> list[Row] | None:
    return [] if _deductible(ctx, None, lp.combo.deductible)[0] else None


def _increasing_lp(ctx: Context, lp: LP) -> list[Row]:
    r = lp.ratios
    return [Row(f"ratios_increasing_{k}", r[k] - r[k + 1], "<=", 0.0, 0.01, "point of ratio",
                f"ratios of bands {k + 1} and {k + 2}") for k in range(len(r) - 1)]


def _no_worse_lp(ctx: Context, lp: LP) -> list[Row] | None:
    return no_worse_rows(ctx, lp.combo, lp.ratios)


def _profit_cap_lp(ctx: Context, lp: LP) -> list[Row]:
    share = ctx.space.contract.profit_cap_share
    lhs = (1 - ctx.opex_share - share) * ctx.insured * lp.premium - lp.payout_hi
    return [Row("profit_cap", lhs, "<=", ctx.opex_fixed, 1.0, "{cur} of surplus",
                "surplus allowed")]


def _budget_lp(ctx: Context, lp: LP) -> list[Row]:
    if isinstance(lp.premium, float):
        return []
    prem, unit = ctx.space.premium, "{cur} of premium per capita"
    return [Row("premium_budget_max", lp.premium, "<=", prem.max, 1.0, unit, "premium budget"),
            Row("premium_budget_min", lp.premium, ">=", prem.min, 1.0, unit, "premium budget")]


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("effective_ratio", "point of effective ratio",
         lambda s: s.constraints.effective_ratio, check=_effective, lp=_effective_lp,
         figures=_effective_figures),
    Rule("nominal_ratio", "point of nominal ratio",
         lambda s: s.constraints.nominal_ratio, check=_nominal, lp=_nominal_lp,
         figures=_nominal_figures),
    Rule("deductible_income", "{cur} of deductible",
         lambda s: s.constraints.deductible_income, check=_deductible_mask,
         lp=_deductible_lp, figures=_deductible_figures),
    Rule("ratios_increasing", "point of ratio",
         lambda s: s.constraints.ratios_increasing, check=_increasing, lp=_increasing_lp,
         figures=_increasing_figures),
    Rule("no_worse", "{cur} paid at a cost level",
         lambda s: s.constraints.no_worse, check=_no_worse, lp=_no_worse_lp),
    Rule("profit_cap", "{cur} of surplus",
         lambda s: s.constraints.profit_cap, premium=_profit_cap, lp=_profit_cap_lp,
         figures=_profit_cap_figures),
    Rule("premium_budget", "{cur} of premium per capita", lambda s: True, lp=_budget_lp),
)}


def active(space: PlanSpace) -> list[Rule]:
    """The rules the configuration switches on (the premium budget always is)."""
    return [r for r in RULES.values() if r.enabled(space)]


def allowed(ctx: Context, prices: Prices, rules: list[Rule]) -> np.ndarray:
    """The plans of `prices` that every plan rule allows."""
    ok = np.ones(len(prices.payout), dtype=bool)
    for rule in rules:
        if rule.check is not None:
            ok &= rule.check(ctx, prices)
    return ok


def premium_range(ctx: Context, prices: Prices, rules: list[Rule]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The premium per capita (CNY) every premium rule allows, per plan: [lo, hi]."""
    lo = np.full(len(prices.payout), -np.inf)
    hi = np.full(len(prices.payout), np.inf)
    for rule in rules:
        if rule.premium is not None:
            a, b = rule.premium(ctx, prices)
            lo, hi = np.maximum(lo, a), np.minimum(hi, b)
    return lo, hi


def violations(ctx: Context, prices: Prices, rules: list[Rule]) -> list[str]:
    """The names of the plan rules the first plan of `prices` breaks (exact)."""
    return [r.name for r in rules if r.check is not None and not r.check(ctx, prices)[0]]


def lp_rows(ctx: Context, lp: LP, rules: list[Rule]) -> list[Row] | None:
    """Every rule's rows in the programme of one combo; None when the combo alone breaks
    one (no ratios can help)."""
    rows: list[Row] = []
    for rule in rules:
        if rule.lp is None:
            continue
        found = rule.lp(ctx, lp)
        if found is None:
            return None
        rows += found
    return rows
