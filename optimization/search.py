"""Finding the best plan of a space, with proof.

Stepped ratios: every plan of the space (deductible x cap x ratio tuple) is priced
exactly (`optimization.pricing`) and checked by every rule, and the best is taken:
optimal by exhaustion. Each plan's premium is the end of its allowed interval that the
objective asks for, on the negotiating step. Ties go to the members: the most expected
payout, then the lowest premium.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecasting.scheme.plan import Plan
from optimization.context import Context
from optimization.objectives import Objective
from optimization.pricing import (
    Combo,
    Pricer,
    Prices,
    combos,
    plan_of,
    ratio_grid,
    ratio_grid_size,
)
from optimization.rules import Rule, allowed, premium_range


@dataclass(frozen=True)
class Candidate:
    """The best plan found with its exact figures (CNY)."""

    plan: Plan
    combo: Combo
    premium: float
    payout: float
    above: float
    loss: float
    scenario_payout: np.ndarray | None


@dataclass(frozen=True)
class Searched:
    """What a search found and how it knows: the best candidate (None: no plan allowed),
    how many plans it priced, the method and whether optimality is proved."""

    best: Candidate | None
    plans: int
    method: str
    proved: bool
    gap: float = 0.0


def for_objective(obj: Objective, rules: list[Rule]) -> list[Rule]:
    """The rules a question is asked under. The premium questions (the lowest premium
    that breaks even or meets the risk appetite) are not capped by the rule on the expected
    surplus: the contract returns any surplus above it, scenario by scenario, and the
    answer says when the premium they need lies above it (solve._notes)."""
    if obj.premium == "low":
        return [r for r in rules if r.name != "profit_cap"]
    return rules


def premium_choice(ctx: Context, obj: Objective, prices: Prices, rules: list[Rule]
                   ) -> np.ndarray:
    """The premium per capita each plan gets (NaN where none is allowed): the end of the
    interval the rules and the objective allow that the objective asks for, on the step."""
    prem = ctx.space.premium
    lo, hi = premium_range(ctx, prices, rules)
    if obj.lower is not None:
        lo = np.maximum(lo, obj.lower(ctx, prices))
    if prem.fixed is not None and not obj.free:
        ok = (lo <= prem.fixed + 1e-9) & (prem.fixed <= hi + 1e-9)
        return np.where(ok, prem.fixed, np.nan)
    step = prem.step
    grid_lo, grid_hi = prem.grid()
    lo = np.maximum(np.ceil(np.round(lo / step, 9)) * step, grid_lo)
    hi = np.minimum(np.floor(np.round(hi / step, 9)) * step, grid_hi)
    pick = hi if obj.premium == "high" else lo
    return np.where(lo <= hi + 1e-9, pick, np.nan)


def _loss(ctx: Context, payout: np.ndarray, premium: np.ndarray) -> np.ndarray:
    income = premium * ctx.insured
    return payout + ctx.opex_fixed + ctx.opex_share * income - income


def best_of(ctx: Context, obj: Objective, prices: Prices, rules: list[Rule],
            keep: bool = False) -> tuple[int, float, float, float] | None:
    """(row, score, payout, premium) of the best plan among `prices`, or None."""
    rules = for_objective(obj, rules)
    ok = np.ones(len(prices.payout), dtype=bool) if keep else allowed(ctx, prices, rules)
    premium = premium_choice(ctx, obj, prices, rules)
    ok &= ~np.isnan(premium)
    if not ok.any():
        return None
    loss = _loss(ctx, prices.payout, np.where(ok, premium, 0.0))
    score = obj.score(loss, premium)
    rows = np.flatnonzero(ok)
    # lexicographic: score, then most payout, then lowest premium (members' favour)
    order = np.lexsort((premium[rows], -prices.payout[rows], np.round(score[rows], 6)))
    i = int(rows[order[0]])
    return i, float(score[i]), float(prices.payout[i]), float(premium[i])


def _candidate(ctx: Context, prices: Prices, row: int, premium: float) -> Candidate:
    plan = plan_of(ctx.space, prices.combo, prices.ratios[row], premium)
    scen = None if prices.scenario_payout is None else prices.scenario_payout[row]
    payout = float(prices.payout[row])
    return Candidate(plan, prices.combo, premium, payout, prices.above,
                     float(_loss(ctx, np.array([payout]), np.array([premium]))[0]), scen)


def _better(a: tuple, b: tuple | None) -> bool:
    """Is the (score, payout, premium) triple a better than b (members' favour on ties)?"""
    if b is None:
        return True
    return (round(a[0], 6), -a[1], a[2]) < (round(b[0], 6), -b[1], b[2])


def enumerate_space(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule]
                    ) -> Searched:
    """Exhaustive search of a stepped space (see module doc)."""
    grid = ratio_grid(ctx.space, ctx.status_quo)
    best, best_key, priced = None, None, 0
    for combo in combos(ctx.space, ctx.status_quo):
        prices = pricer.price(combo, grid, with_scenarios=obj.scenarios)
        priced += len(grid)
        found = best_of(ctx, obj, prices, rules)
        if found is None:
            continue
        row, score, payout, premium = found
        if _better((score, payout, premium), best_key):
            best_key = (score, payout, premium)
            best = _candidate(ctx, prices, row, premium)
    return Searched(best, priced, "exhaustive", True)


def keep_today(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule]) -> Searched:
    """Today's benefits kept: only the premium moves (B and C)."""
    prices = pricer.price_plan(ctx.status_quo, with_scenarios=obj.scenarios)
    premium_rules = [r for r in rules if r.premium is not None]
    found = best_of(ctx, obj, prices, premium_rules, keep=True)
    if found is None:
        return Searched(None, 1, "today's benefits", True)
    row, _, payout, premium = found
    plan = ctx.status_quo.with_(premium_per_capita=premium)
    scen = None if prices.scenario_payout is None else prices.scenario_payout[row]
    loss = float(_loss(ctx, np.array([payout]), np.array([premium]))[0])
    return Searched(Candidate(plan, prices.combo, premium, payout, prices.above, loss, scen),
                    1, "today's benefits", True)


def space_size(ctx: Context) -> float:
    """Plans in a stepped space (inf for continuous ratios)."""
    if ctx.space.bands.step <= 0:
        return math.inf
    return ratio_grid_size(ctx.space, ctx.status_quo) * len(combos(ctx.space, ctx.status_quo))
