"""The plan problem of one (deductible, cap) choice as a linear programme in PuLP.

For fixed deductible and cap the payout is sum_k r_k A_k(x_cap(r)) per group of members
(`optimization.pricing`), with A_k non-decreasing in the cap level x_cap. Two linear
models of it are used:
- bounds over a box of cap levels [t_lo, t_hi] (branch and bound): A_k(t_lo) gives a
  payout that is never above the true one, A_k(t_hi) one never below, and
  g_r(t_lo) <= cap <= g_r(t_hi) keeps the cap level inside the box;
- the exact first-order model at a plan (shadow prices): the gradient
  dP/dr_k = E[w_k(X) 1{X < x_cap}] of the members not yet at the cap.
Each rule enters through `rows` (its LP form), with the size of one natural unit of its
right-hand side, so that duals read in the rule's own unit. Amounts are CNY.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp

from forecasting.errors import UserError
from optimization.context import Context
from optimization.pricing import Combo, Schedule, schedules_of, space_schedules, tol
from optimization.space import SOLVERS, PlanSpace

OBJECTIVE_NAMES = ("min-loss", "break-even", "cvar", "risk")


class InfeasibleError(UserError):
    """No plan meets every constraint; the message names those in conflict, and `changes`
    says the same as data (see solve.explain_infeasible) for reports in other languages."""

    def __init__(self, message: str, changes: dict | None = None):
        super().__init__(message)
        self.changes = changes or {}


def solver(space: PlanSpace, name: str | None = None):
    """The solver registered under `name` (default: the space's), with the space's time
    limit and MIP gap."""
    name = name or space.solver.name
    if name not in SOLVERS:
        raise UserError(f"solver must be one of {', '.join(SOLVERS)}; got {name!r}")
    opts = dict(msg=False, timeLimit=space.solver.time_limit, gapRel=space.solver.mip_gap)
    return SOLVERS[name](**opts)


@dataclass(frozen=True)
class Row:
    """One named constraint `lhs sense rhs`; dual x size = the objective's change per
    natural unit of the right-hand side."""

    name: str
    lhs: object
    sense: str
    rhs: float
    size: float   # one natural unit of the right-hand side, in the row's own terms
    unit: str     # that unit in words
    words: str    # what the row says


@dataclass
class LP:
    """A built programme of one combo with handles on its parts."""

    ctx: Context
    combo: Combo
    problem: pulp.LpProblem
    ratios: list
    premium: object
    payout_lo: object           # never above the true expected payout
    payout_hi: object           # never below it
    above: float
    rows: dict[str, Row] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        expr = row.lhs
        con = {">=": expr >= row.rhs, "<=": expr <= row.rhs, "==": expr == row.rhs}[row.sense]
        self.problem += con, row.name
        self.rows[row.name] = row


def ratio_variables(prob: pulp.LpProblem, space: PlanSpace, integer: bool) -> list:
    """Band ratios: continuous in [min, max], or min + step x an integer."""
    b = space.bands
    K = len(b.edges) + 1
    if not integer:
        return [prob.add_variable(f"r{k}", b.ratio_min, b.ratio_max) for k in range(K)]
    n = int(np.floor((b.ratio_max - b.ratio_min) / b.step + 1e-9))  # never above the max
    return [b.ratio_min + b.step * prob.add_variable(f"n{k}", 0, n, cat="Integer")
            for k in range(K)]


def premium_variable(prob: pulp.LpProblem, ctx: Context, free: bool):
    """The premium per capita: fixed, or a multiple of the negotiating step in the budget."""
    prem = ctx.space.premium
    if prem.fixed is not None and not free:
        return float(prem.fixed)
    lo, hi = prem.grid()
    n = prob.add_variable("premium_steps", round(lo / prem.step), round(hi / prem.step),
                          cat="Integer")
    return prem.step * n


def width_at(sched: Schedule, y: float) -> np.ndarray:
    """Cost inside each band of a member with annual cost y (CNY)."""
    return np.clip(y, sched.lower, sched.upper) - sched.lower


def no_worse_rows(ctx: Context, combo: Combo, ratios: list) -> list[Row] | None:
    """Nobody worse off, exactly and linearly: at every breakpoint y of today's schedule
    and of the proposal's fixed edges, min(cap, g_r(y)) >= today(y), i.e. cap >= today(y)
    (a fact of the combo) and g_r(y) >= today(y); where the proposal's cap binds, today's
    payout must not exceed the cap: g_r(y*) >= cap at y* = today^-1(cap); and beyond all
    breakpoints a capped proposal cannot face an uncapped today, and an uncapped one pays
    at least today's ratio on each CNY above them (its last band's ratio >= today's final
    slope). None: the combo alone breaks the rule."""
    space, today = ctx.space, schedules_of(ctx.status_quo)
    sample = np.array([[space.bands.ratio_min] * len(ratios)])
    mine = space_schedules(space, combo, sample)
    inc = space.special.ratio_increment
    rows = []
    for who, new, old in zip(("general", "special"), mine, today, strict=True):
        cap, old_cap = new.cap[0], old.cap[0]
        if np.isfinite(cap) and not np.isfinite(old.x_cap[0]):
            return None  # today's payout grows for ever; a capped proposal falls behind
        shift = inc if who == "special" else 0.0
        points = np.unique(np.concatenate([old.breakpoints()[0], new.lower, [0.0]]))
        points = points[np.isfinite(points)]
        for y in points:
            target = float(old.pay(np.array([y]))[0, 0])
            if target <= tol(y):
                continue
            if cap < target - tol(y):
                return None
            w = width_at(new, y)
            lhs = pulp.lpSum((r + shift) * float(wk) for r, wk in
                             zip(_aligned(ratios, new), w, strict=True) if wk > 0)
            rows.append(Row(f"no_worse_{who}_{_money(y)}", lhs, ">=", target, 1.0,
                            "{cur} paid at that cost",
                            f"payout of a {who} member at {y:,.0f} not below today's"))
        slope = float(old.final_slope()[0])  # today's ratio above every breakpoint
        if not np.isfinite(cap) and slope > 0:
            rows.append(Row(f"no_worse_{who}_beyond", _aligned(ratios, new)[-1] + shift, ">=",
                            slope, 0.01, "point of ratio",
                            f"a {who} member's ratio above every breakpoint not below "
                            "today's"))
        if np.isfinite(cap) and cap < old_cap - tol(old_cap):
            y_star = _inverse(old, cap)
            w = width_at(new, y_star)
            lhs = pulp.lpSum((r + shift) * float(wk) for r, wk in
                             zip(_aligned(ratios, new), w, strict=True) if wk > 0)
            rows.append(Row(f"no_worse_{who}_cap", lhs, ">=", cap, 1.0, "{cur} paid at that cost",
                            f"a {who} member's payout reaches the cap by {y_star:,.0f}"))
    return rows


def _money(y: float) -> str:
    """A cost level in a row's name, exactly (a portfolio in thousands has levels 7.5 and
    15.4: rounded to whole units two rows would share a name)."""
    return np.format_float_positional(float(y), trim="-")


def _aligned(ratios: list, sched: Schedule) -> list:
    """The ratio variables of the bands a schedule keeps (special groups may drop some)."""
    return list(ratios)[len(ratios) - len(sched.lower):]


def _inverse(sched: Schedule, value: float) -> float:
    """The annual cost at which a one-plan schedule first pays `value` (money; it must
    pay it somewhere). Bisection from 0 to its cap level, or to a cost found by doubling
    its last breakpoint (no fixed amount: money comes in the data's units)."""
    hi = float(sched.x_cap[0])
    if not np.isfinite(hi):
        points = sched.breakpoints()[0]
        hi = float(np.max(points[np.isfinite(points)]))
        for _ in range(2000):  # at most to the largest float: then it never pays `value`
            if sched.pay(np.array([hi]))[0, 0] >= value:
                break
            hi *= 2
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if sched.pay(np.array([mid]))[0, 0] >= value:
            hi = mid
        else:
            lo = mid
    return hi
