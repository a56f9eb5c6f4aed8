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

from optimization.milp import LP, Row, no_worse_rows, premium_variable, ratio_variables, solver
from optimization.objectives import Objective
from optimization.pricing import Combo, Pricer, Schedule, combos, schedules
from optimization.rules import Context, Rule
from optimization.search import Candidate, Searched, _better, _candidate, best_of

MAX_NODES = 400  # per combo; past it the result says "not proved" with the gap


@dataclass(frozen=True)
class Box:
    """Cap levels (CNY) of the capped groups: group index -> (low, high)."""

    bounds: tuple[tuple[int, float, float], ...]

    def split(self, at: dict[int, float]) -> list[Box]:
        """Two boxes, cut across the widest interval at the solution's level (or middle)."""
        g, lo, hi = max(self.bounds, key=lambda b: b[2] - b[1])
        cut = at.get(g, (lo + hi) / 2)
        if not lo + 1e-6 < cut < hi - 1e-6:
            cut = (lo + hi) / 2
        rest = tuple(b for b in self.bounds if b[0] != g)
        return [Box(tuple(sorted((*rest, (g, lo, cut))))),
                Box(tuple(sorted((*rest, (g, cut, hi)))))]

    @property
    def width(self) -> float:
        return max((hi - lo for _, lo, hi in self.bounds), default=0.0)


def _scheds(ctx: Context, combo: Combo, ratios: np.ndarray) -> tuple[Schedule, Schedule]:
    from optimization.milp import _special

    return schedules(combo, np.atleast_2d(ratios), _special(ctx.space), ctx.space.bands.edges)


def root_box(ctx: Context, combo: Combo) -> Box:
    """Cap levels of each capped group between those of the highest and lowest ratios."""
    b = ctx.space.bands
    K = len(b.edges) + 1
    high = _scheds(ctx, combo, np.full(K, b.ratio_max))
    low = _scheds(ctx, combo, np.full(K, b.ratio_min))
    out = []
    for g in (0, 1):
        if np.isfinite(high[g].cap[0]):
            hi = low[g].x_cap[0]
            out.append((g, float(high[g].x_cap[0]), float(hi) if np.isfinite(hi) else 1e12))
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
    scheds = _scheds(ctx, combo, np.full(len(r), space.bands.ratio_min))
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
                w = np.clip(t, sched.lower, sched.upper) - sched.lower
                lhs = pulp.lpSum((rk + shift[g]) * float(wk) for rk, wk in
                                 zip(rr, w, strict=True))
                prob += (lhs <= cap) if sense == "<=" else (lhs >= cap), f"{name}_{g}"
    above = sum(gr.above(s.lower[0]) for gr, s in zip(pricer.groups, scheds, strict=True))
    lp = LP(ctx, combo, prob, r, p, pulp.lpSum(lo_terms), pulp.lpSum(hi_terms), above)
    for row in rule_rows(ctx, lp, rules) or [None]:
        if row is None:
            return None
        lp.add(row)
    objective_rows(ctx, obj, pricer, lp, scheds, levels)
    return lp


def rule_rows(ctx: Context, lp: LP, rules: list[Rule]) -> list[Row] | None:
    """Every active rule in LP form; None when the combo alone breaks one."""
    c, names = ctx.space.constraints, {r.name for r in rules}
    rows: list[Row] = []
    r, p = lp.ratios, lp.premium
    if "deductible_income" in names and lp.combo.deductible > (
            c.deductible_income_share * ctx.space.costs.disposable_income):
        return None
    if "effective_ratio" in names:
        rows.append(Row("effective_ratio", lp.payout_hi, ">=", ctx.effective_floor * lp.above,
                        0.01 * lp.above, "effective ratio floor"))
    if "nominal_ratio" in names:
        rows += [Row(f"nominal_ratio_{k}", rk, ">=", c.nominal_ratio_floor, 0.01,
                     f"ratio of band {k + 1}") for k, rk in enumerate(r)]
    if "ratios_increasing" in names:
        rows += [Row(f"ratios_increasing_{k}", r[k] - r[k + 1], "<=", 0.0, 0.01,
                     f"ratios of bands {k + 1} and {k + 2}") for k in range(len(r) - 1)]
    if "no_worse" in names:
        nw = no_worse_rows(ctx, lp.combo, r)
        if nw is None:
            return None
        rows += nw
    if "profit_cap" in names:
        share = ctx.space.contract.profit_cap_share
        rows.append(Row("profit_cap", (1 - ctx.opex_share - share) * ctx.insured * p
                        - lp.payout_hi, "<=", ctx.opex_fixed, 1.0, "surplus allowed"))
    if not isinstance(p, float):
        prem = ctx.space.premium
        rows.append(Row("premium_budget_max", p, "<=", prem.max, 1.0, "premium budget"))
        rows.append(Row("premium_budget_min", p, ">=", prem.min, 1.0, "premium budget"))
    return rows


def objective_rows(ctx: Context, obj: Objective, pricer: Pricer, lp: LP, scheds,
                   levels: dict) -> None:
    """The objective and its own constraints (break-even, CVaR rows)."""
    net = (1 - ctx.opex_share) * ctx.insured
    loss_lo = lp.payout_lo + ctx.opex_fixed - net * lp.premium
    if obj.name == "break-even":
        lp.add(Row("break_even", loss_lo, "<=", 0.0, 1.0, "expected loss"))
    if obj.scenarios:
        _cvar_rows(ctx, obj, pricer, lp, scheds, levels, net)
    goal = loss_lo if obj.premium == "high" else lp.premium
    lp.problem.setObjective(goal if not isinstance(goal, float) else pulp.lpSum([goal]))


def _cvar_rows(ctx: Context, obj: Objective, pricer: Pricer, lp: LP, scheds, levels: dict,
               net: float) -> None:
    """Rockafellar-Uryasev: CVaR of the scenario losses (lower bounds) within the limit."""
    risk = ctx.space.risk
    if obj.name == "risk" and risk.appetite != "cvar":
        raise NotImplementedError("the prob_loss appetite needs stepped ratios")
    n = pricer.scenarios.n
    pay = [0.0] * n
    inc = ctx.space.special.ratio_increment
    for g, (sums, sched) in enumerate(zip(pricer._sums, scheds, strict=True)):
        t = levels.get(g, (np.inf, np.inf))[0]
        at = sums.at(np.concatenate([np.minimum(sched.lower, t), np.minimum(sched.upper, t)]))
        K = len(sched.lower)
        delta = at[:, K:] - at[:, :K]  # (n, K)
        rr = lp.ratios[len(lp.ratios) - K:]
        shift = inc if g == 1 else 0.0
        for s in range(n):
            pay[s] = pay[s] + pulp.lpSum((rk + shift) * float(d) for rk, d in
                                         zip(rr, delta[s], strict=True))
    prob = lp.problem
    eta = prob.add_variable("cvar_eta")
    xi = [prob.add_variable(f"cvar_xi{s}", lowBound=0) for s in range(n)]
    for s in range(n):
        prob += xi[s] >= pay[s] + ctx.opex_fixed - net * lp.premium - eta, f"cvar_s{s}"
    tail = eta + pulp.lpSum(xi) / ((1 - risk.cvar_level) * n)
    if obj.name == "cvar":
        lp.add(Row("cvar_budget", tail, "<=", risk.cvar_budget, 1.0, "CVaR budget"))
    else:
        lp.add(Row("risk_appetite", tail - risk.cvar_share * ctx.insured * lp.premium, "<=",
                   0.0, 1.0, "CVaR within the share of premium"))


def solve_lp(lp: LP) -> tuple[float, np.ndarray, float] | None:
    """(objective, ratios, premium) of a solved programme, None when infeasible."""
    prob = lp.problem
    prob.solve(solver(lp.ctx.space))
    if prob.status != pulp.LpStatusOptimal:
        return None
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
    nodes = 0
    while heap:
        bound, _, box = heapq.heappop(heap)
        incumbent = key if key is not None else best
        if incumbent is not None and bound >= incumbent[0] - tol:
            return found, key, 0.0, nodes
        if nodes >= MAX_NODES:
            return found, key, (incumbent[0] - bound) if incumbent else np.inf, nodes
        nodes += 1
        lp = node_lp(ctx, obj, pricer, rules, combo, box, integer)
        solved = None if lp is None else solve_lp(lp)
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
        if (incumbent is not None and value >= incumbent[0] - tol) or not box.bounds \
                or box.width < 1e-3 or (own is not None and own - value <= tol):
            continue
        for child in box.split(at):
            heapq.heappush(heap, (value, next(counter), child))
    return found, key, 0.0, nodes


def tolerance(ctx: Context, obj: Objective) -> float:
    """The gap proved: a share of the largest premium income (CNY of loss), or a tenth of
    the negotiating step (CNY of premium per capita)."""
    if obj.premium == "low":
        return ctx.space.premium.step / 10
    return ctx.space.solver.tolerance * ctx.space.premium.max * ctx.insured


def branch_and_bound(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule]
                     ) -> Searched:
    """The best plan over every combo (see module doc)."""
    best, key, gap, nodes = None, None, 0.0, 0
    for combo in combos(ctx.space, ctx.status_quo):
        found, found_key, open_gap, n = combo_search(ctx, obj, pricer, rules, combo, key)
        nodes += n
        gap = max(gap, open_gap)
        if found is not None and _better(found_key, key):
            best, key = found, found_key
    proved = gap <= tolerance(ctx, obj)
    return Searched(best, nodes, "branch and bound", proved, float(gap))
