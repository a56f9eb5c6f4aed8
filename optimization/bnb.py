"""Branch and bound on the cap level, for continuous ratios and spaces too large to price
exhaustively.

For a fixed (deductible, cap) the only non-linearity is the cap level x_cap(r) of each
capped group of members. A node is a box of cap levels; its linear programme
(`optimization.milp`) bounds the objective from below over every plan whose cap levels lie
in the box. The node's solution is priced exactly and becomes the incumbent when it is
better; a box whose bound cannot beat the incumbent by more than the tolerance is closed,
any other is split at the solution's exact cap level. When every box is closed the
incumbent is optimal within the tolerance (CNY of loss, or of premium per capita).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np
import pulp

from optimization.context import Context
from optimization.milp import LP, premium_variable, ratio_variables, solver
from optimization.objectives import Objective, add_to_lp
from optimization.pricing import RTOL, Combo, Pricer, Schedule, combos, space_schedules, tol
from optimization.rules import Rule, lp_rows
from optimization.search import (
    Candidate,
    Searched,
    _better,
    _candidate,
    best_of,
    for_objective,
)

MAX_NODES = 400  # per combo; past it the result says "not proved" with the gap


@dataclass(frozen=True)
class Box:
    """Cap levels (money) of the capped groups: group index -> (low, high); high is inf
    when the lowest ratios never reach the cap."""

    bounds: tuple[tuple[int, float, float], ...]

    def split(self, at: dict[int, float]) -> list[Box]:
        """Two boxes, cut across the widest interval (as a share of its level) at the
        solution's level, else in the middle (twice the low end when it is open)."""
        g, lo, hi = max(self.bounds, key=lambda b: _share(b[1], b[2]))
        cut = at.get(g, np.nan)
        if not (np.isfinite(cut) and lo + tol(cut) < cut < hi - tol(cut)):
            cut = (lo + hi) / 2 if np.isfinite(hi) else 2 * lo
        rest = tuple(b for b in self.bounds if b[0] != g)
        return [Box(tuple(sorted((*rest, (g, lo, cut))))),
                Box(tuple(sorted((*rest, (g, cut, hi)))))]

    @property
    def narrow(self) -> bool:
        """Too narrow to split: every interval within float rounding of its level (a share,
        not an amount: cap levels are in the data's money unit)."""
        return all(_share(lo, hi) <= RTOL for _, lo, hi in self.bounds)


def _share(lo: float, hi: float) -> float:
    """The width of [lo, hi] as a share of its level (inf when open)."""
    return (hi - lo) / max(abs(hi), abs(lo)) if np.isfinite(hi) else np.inf


def root_box(ctx: Context, combo: Combo) -> Box:
    """Cap levels of each capped group between those of the highest and lowest ratios."""
    b = ctx.space.bands
    K = len(b.edges) + 1
    high = space_schedules(ctx.space, combo, np.full(K, b.ratio_max))
    low = space_schedules(ctx.space, combo, np.full(K, b.ratio_min))
    out = []
    for g in (0, 1):
        if np.isfinite(high[g].cap[0]):
            hi = low[g].x_cap[0]
            out.append((g, float(high[g].x_cap[0]), float(hi)))  # hi inf: never reached
    return Box(tuple(out))


def _increments(group, sched: Schedule, t: float) -> np.ndarray:
    """A_k(t) = Lam(min(U_k, t)) - Lam(min(L_k, t)) for each band k (CNY)."""
    lo = group.lam(np.minimum(sched.lower, t))
    hi = group.lam(np.minimum(sched.upper, t))
    return hi - lo


def node_lp(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule], combo: Combo,
            box: Box, integer: bool) -> LP | None:
    """The node's programme (see module doc); None when the combo breaks a rule alone."""
    space = ctx.space
    prob = pulp.LpProblem("ciplan_node", pulp.LpMinimize)
    r = ratio_variables(prob, space, integer)
    p = premium_variable(prob, ctx, obj.free)
    scheds = space_schedules(ctx.space, combo, np.full(len(r), space.bands.ratio_min))
    inc = space.special.ratio_increment
    shift = (0.0, inc)
    levels = {g: (lo, hi) for g, lo, hi in box.bounds}
    lo_terms, hi_terms = [], []
    for g, (group, sched) in enumerate(zip(pricer.groups, scheds, strict=True)):
        t_lo, t_hi = levels.get(g, (np.inf, np.inf))
        a_lo, a_hi = _increments(group, sched, t_lo), _increments(group, sched, t_hi)
        rr = r[len(r) - len(sched.lower):]
        lo_terms += [(rk + shift[g]) * float(a) for rk, a in zip(rr, a_lo, strict=True)]
        hi_terms += [(rk + shift[g]) * float(a) for rk, a in zip(rr, a_hi, strict=True)]
        if g in levels:  # keep the cap level inside the box: g_r(t_lo) <= cap <= g_r(t_hi)
            cap = float(sched.cap[0])
            for name, t, sense in (("cap_low", t_lo, "<="), ("cap_high", t_hi, ">=")):
                if not np.isfinite(t):  # an open box: any level above t_lo, none at all
                    continue
                w = np.clip(t, sched.lower, sched.upper) - sched.lower
                lhs = pulp.lpSum((rk + shift[g]) * float(wk) for rk, wk in
                                 zip(rr, w, strict=True))
                prob += (lhs <= cap) if sense == "<=" else (lhs >= cap), f"{name}_{g}"
    above = sum(gr.above(s.lower[0]) for gr, s in zip(pricer.groups, scheds, strict=True))
    lp = LP(ctx, combo, prob, r, p, pulp.lpSum(lo_terms), pulp.lpSum(hi_terms), above)
    rows = lp_rows(ctx, lp, for_objective(obj, rules))
    if rows is None:
        return None
    for row in rows:
        lp.add(row)
    add_to_lp(ctx, obj, lp, _scenario_bounds(ctx, pricer, lp, scheds, levels)
              if obj.scenarios else None)
    return lp


def _scenario_bounds(ctx: Context, pricer: Pricer, lp: LP, scheds, levels: dict) -> list:
    """Each scenario's payout, never above the true one over the box (cap levels at the
    box's low end), as an expression in the ratios (CNY)."""
    pay = [0.0] * pricer.scenarios.n
    inc = ctx.space.special.ratio_increment
    for g, (sums, sched) in enumerate(zip(pricer._sums, scheds, strict=True)):
        t = levels.get(g, (np.inf, np.inf))[0]
        at = sums.at(np.concatenate([np.minimum(sched.lower, t), np.minimum(sched.upper, t)]))
        K = len(sched.lower)
        delta = at[:, K:] - at[:, :K]
        rr = lp.ratios[len(lp.ratios) - K:]
        shift = inc if g == 1 else 0.0
        for s in range(len(pay)):
            pay[s] = pay[s] + pulp.lpSum((rk + shift) * float(d) for rk, d in
                                         zip(rr, delta[s], strict=True))
    return pay


class Unproved(Exception):
    """The solver stopped without proving its node (time limit, iteration limit)."""


def solve_lp(lp: LP) -> tuple[float, np.ndarray, float] | None:
    """(objective, ratios, premium) of a programme solved to proved optimality (no MIP gap:
    its value is the node's bound), None when infeasible; Unproved otherwise."""
    prob = lp.problem
    space = lp.ctx.space
    exact = space.model_copy(update={"solver": space.solver.model_copy(
        update={"mip_gap": 0.0})})
    prob.solve(solver(exact))
    if prob.status == pulp.LpStatusInfeasible:
        return None
    if prob.status != pulp.LpStatusOptimal or prob.sol_status != pulp.LpSolutionOptimal:
        raise Unproved(pulp.LpStatus[prob.status])
    ratios = np.array([float(pulp.value(r)) for r in lp.ratios])
    prem = lp.premium if isinstance(lp.premium, float) else float(pulp.value(lp.premium))
    return float(pulp.value(prob.objective)), ratios, prem


def combo_search(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
                 combo: Combo, best: tuple | None) -> tuple[Candidate | None, tuple | None,
                                                              float, int]:
    """Branch and bound within one combo: (candidate, its key, open gap, nodes)."""
    integer = ctx.space.bands.step > 0
    tol = tolerance(ctx, obj)
    found, key = None, None
    counter = itertools.count()
    heap = [(-np.inf, next(counter), root_box(ctx, combo))]
    nodes, tiny_gap = 0, 0.0
    while heap:
        bound, _, box = heapq.heappop(heap)
        incumbent = key if key is not None else best
        if incumbent is not None and bound >= incumbent[0] - tol:
            return found, key, tiny_gap, nodes
        if nodes >= MAX_NODES:
            return found, key, (incumbent[0] - bound) if incumbent else np.inf, nodes
        nodes += 1
        lp = node_lp(ctx, obj, pricer, rules, combo, box, integer)
        try:
            solved = None if lp is None else solve_lp(lp)
        except Unproved:  # the box stays open: its bound is the one it came with
            return found, key, (incumbent[0] - bound) if incumbent else np.inf, nodes
        if solved is None:
            continue
        value, ratios, _ = solved
        prices = pricer.price(combo, ratios[None, :], with_scenarios=obj.scenarios)
        exact = best_of(ctx, obj, prices, rules)
        at = {}
        if exact is not None:
            row, score, payout, premium = exact
            if _better((score, payout, premium), key if key is not None else best):
                key = (score, payout, premium)
                found = _candidate(ctx, prices, row, premium)
        xs = (prices.general.x_cap[0], prices.special.x_cap[0])
        at = {g: float(xs[g]) for g, _, _ in box.bounds if np.isfinite(xs[g])}
        incumbent = key if key is not None else best
        own = None if exact is None else exact[1]
        if (incumbent is not None and value >= incumbent[0] - tol) or (
                own is not None and own - value <= tol):
            continue
        if not box.bounds or box.narrow:  # cannot split: what it hides is a gap
            tiny_gap = max(tiny_gap, (incumbent[0] - value) if incumbent else np.inf)
            continue
        for child in box.split(at):
            heapq.heappush(heap, (value, next(counter), child))
    return found, key, tiny_gap, nodes


def _today(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule]
           ) -> tuple[Candidate | None, tuple | None]:
    """Today's ratios under every deductible and cap of the space, priced and checked like
    any plan: they are candidates of every combo, as in the exhaustive search (they may lie
    off the grid or outside the bounds, where no node's programme reaches them). A space
    with another number of bands has no place for them (as in `pricing.ratio_grid`)."""
    best, key = None, None
    today = np.array([ctx.status_quo.ratios])
    if today.shape[1] != len(ctx.space.bands.edges) + 1:
        return best, key
    for combo in combos(ctx.space, ctx.status_quo):
        prices = pricer.price(combo, today, with_scenarios=obj.scenarios)
        exact = best_of(ctx, obj, prices, rules)
        if exact is None:
            continue
        row, score, payout, premium = exact
        if _better((score, payout, premium), key):
            best, key = _candidate(ctx, prices, row, premium), (score, payout, premium)
    return best, key


def tolerance(ctx: Context, obj: Objective) -> float:
    """The gap proved: a share of the largest premium income (CNY of loss), or a tenth of
    the negotiating step (CNY of premium per capita)."""
    if obj.premium == "low":
        return ctx.space.premium.step / 10
    return ctx.space.solver.tolerance * ctx.space.premium.max * ctx.insured


def branch_and_bound(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule]
                     ) -> Searched:
    """The best plan over every combo (see module doc); today's ratios, which may lie off
    the grid or outside the bounds, are always candidates, under every combo."""
    best, key = _today(ctx, obj, pricer, rules)
    gap, nodes = 0.0, 0
    for combo in combos(ctx.space, ctx.status_quo):
        found, found_key, open_gap, n = combo_search(ctx, obj, pricer, rules, combo, key)
        nodes += n
        gap = max(gap, open_gap)
        if found is not None and _better(found_key, key):
            best, key = found, found_key
    proved = gap <= tolerance(ctx, obj)
    return Searched(best, nodes, "branch and bound", proved, float(gap))
