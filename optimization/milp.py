"""The plan problem as a MILP in PuLP (DESIGN §4), solved with HiGHS (CBC on request).

Decisions: premium p, one (deductible, cap) combo (binaries w_i), band ratios r_k (in
5-point steps as integers, or continuous). Payout is linear in r for a fixed combo; the
product w_i * r_k is linearised exactly with u_ik (u <= r_max w, u <= r, u >= r - r_max (1-w)).
Amounts are in CNY millions inside the model, CNY outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pulp

from forecasting.errors import UserError
from forecasting.scheme.plan import Plan
from optimization.coefficients import Coefficients, Combo, plan_of
from optimization.space import SOLVERS, PlanSpace

M = 1e6  # model units: CNY millions
OBJECTIVES = ("min-loss", "break-even", "cvar")


class InfeasibleError(UserError):
    """No plan meets every constraint; the message names those in conflict."""


@dataclass
class Model:
    """A built problem with handles on its variables and named constraints."""

    problem: pulp.LpProblem
    premium: pulp.LpVariable | float
    ratios: list
    w: list
    u: list
    payout: pulp.LpAffineExpression
    loss: pulp.LpAffineExpression
    above: pulp.LpAffineExpression
    slacks: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)


def solver(space: PlanSpace, name: str | None = None):
    """The solver registered under `name` (default: the space's), with the space's time
    limit and MIP gap."""
    name = name or space.solver.name
    if name not in SOLVERS:
        raise UserError(f"solver must be one of {', '.join(SOLVERS)}; got {name!r}")
    opts = dict(msg=False, timeLimit=space.solver.time_limit, gapRel=space.solver.mip_gap)
    return SOLVERS[name](**opts)


def build(space: PlanSpace, coef: Coefficients, insured: float, status_quo: Plan,
          objective: str, fixed: tuple[Combo, tuple[float, ...]] | None = None,
          keep_benefits: bool = False, elastic: bool = False,
          floor: float | None = None) -> Model:
    """The problem for `objective`. `fixed` = (combo, ratios) pins the discrete choices (for
    shadow prices); `keep_benefits` pins today's plan; `elastic` softens every benefit
    constraint with a penalised slack (to explain infeasibility)."""
    cons = space.constraints
    prob = pulp.LpProblem("ciplan_plan", pulp.LpMinimize)
    K = len(space.bands.edges) + 1
    rmin, rmax, step = space.bands.ratio_min, space.bands.ratio_max, space.bands.step
    free_premium = objective == "break-even" or space.premium.fixed is None
    p = (prob.add_variable("premium", lowBound=0) if free_premium
         else float(space.premium.fixed))
    if fixed is None and step > 0 and not keep_benefits:
        steps = [prob.add_variable(f"n{k}", 0, round((rmax - rmin) / step), cat="Integer")
                 for k in range(K)]
        r = [rmin + step * n for n in steps]
    else:
        r = [prob.add_variable(f"r{k}", rmin, rmax) for k in range(K)]
    combos = coef.combos
    if fixed is not None:
        w = [1.0 if c == fixed[0] else 0.0 for c in combos]
    else:
        w = [prob.add_variable(f"w{i}", cat="Binary") for i in range(len(combos))]
        prob += pulp.lpSum(w) == 1, "one_combo"
    u = []
    for i, wi in enumerate(w):
        if fixed is not None:
            u.append([rk * wi for rk in r])
            continue
        row = []
        for k in range(K):
            uik = prob.add_variable(f"u{i}_{k}", 0, rmax)
            prob += uik <= rmax * wi, f"lin_a_{i}_{k}"
            prob += uik <= r[k], f"lin_b_{i}_{k}"
            prob += uik >= r[k] - rmax * (1 - wi), f"lin_c_{i}_{k}"
            row.append(uik)
        u.append(row)
    inc = space.special.ratio_increment
    payout = pulp.lpSum(
        (coef.general[i, k] + coef.special[i, k]) / M * u[i][k]
        for i in range(len(combos)) for k in range(K)
    ) + pulp.lpSum(inc * coef.special[i].sum() / M * w[i] for i in range(len(combos)))
    income = p * insured / M
    opex = space.costs.opex_fixed / M + space.costs.opex_share * income
    loss = payout + opex - income
    above = pulp.lpSum(coef.above[i] / M * w[i] for i in range(len(combos)))
    model = Model(prob, p, r, w, u, payout, loss, above)
    soft = _soft(model, elastic)

    if keep_benefits:
        for k in range(K):
            prob += r[k] == status_quo.ratios[k], f"keep_ratio_{k}"
        index = combos.index(Combo(status_quo.deductible, status_quo.cap))
        if fixed is None:
            prob += w[index] == 1, "keep_combo"
    if free_premium:
        soft(p, "<=", space.premium.max, "premium_budget_max", "CNY per capita")
        soft(p, ">=", space.premium.min, "premium_budget_min", "CNY per capita")
    if cons.effective_ratio and not keep_benefits:
        floor = cons.effective_ratio_floor if floor is None else floor
        soft(payout - floor * above, ">=", 0, "effective_ratio", "CNY M of payout")
    if cons.deductible_income and not keep_benefits:
        limit = cons.deductible_income_share * space.costs.disposable_income
        soft(pulp.lpSum(c.deductible / 1000 * w[i] for i, c in enumerate(combos)), "<=",
             limit / 1000, "deductible_income", "thousand CNY of deductible")
    if cons.ratios_increasing and not keep_benefits:
        for k in range(K - 1):
            soft(r[k] - r[k + 1], "<=", 0, f"ratios_increasing_{k}", "ratio")
    if cons.no_worse and not keep_benefits:
        levels = cons.no_worse_levels
        today = status_quo.payout(np.array(levels))
        for j, (x, g0) in enumerate(zip(levels, today, strict=True)):
            soft(pulp.lpSum(coef.widths[i, j, k] / 1000 * u[i][k] for i in range(len(combos))
                            for k in range(K)), ">=", g0 / 1000,
                 f"no_worse_{x:g}", "thousand CNY at that cost")
            too_low = [i for i, c in enumerate(combos) if c.cap is not None and c.cap < g0]
            if too_low and fixed is None:
                soft(pulp.lpSum(w[i] for i in too_low), "<=", 0, f"no_worse_cap_{x:g}",
                     "combo")
    if cons.profit_cap:
        share = space.contract.profit_cap_share
        soft(-loss - share * income, "<=", 0, "profit_cap", "CNY M of surplus")
    return model


def _soft(model: Model, elastic: bool):
    """Add `lhs sense rhs` as a named constraint; in elastic mode a penalised slack on its
    feasible side lets it give, and the slack says by how much it had to."""
    def add(lhs, sense: str, rhs: float, name: str, unit: str) -> None:
        if elastic:
            s = model.problem.add_variable(f"slack_{name}", lowBound=0)
            lhs = lhs + s if sense == ">=" else lhs - s
            model.slacks[name] = s
            model.units[name] = unit
        model.problem += (lhs >= rhs if sense == ">=" else lhs <= rhs), name
    return add


@dataclass(frozen=True)
class Solution:
    """A solved model: the plan, the solver's word, the objective in CNY."""

    plan: Plan
    combo: Combo
    objective_cny: float
    loss_cny: float
    payout_cny: float
    status: str
    sol_status: int
    seconds: float
    gap: float | None


def solve(model: Model, space: PlanSpace, coef: Coefficients, sense_objective,
          solver_name: str | None = None, maximize: bool = False) -> Solution:
    """Set the objective, solve, check both status and sol_status, read the plan."""
    prob = model.problem
    prob.sense = pulp.LpMaximize if maximize else pulp.LpMinimize
    prob.setObjective(sense_objective)
    s = solver(space, solver_name)
    prob.solve(s)
    status = pulp.LpStatus[prob.status]
    if prob.status != pulp.LpStatusOptimal or prob.sol_status not in (
            pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise _NotSolved(status, prob.sol_status)
    index = int(np.argmax([_value(w) for w in model.w]))
    combo = coef.combos[index]
    ratios = tuple(round(_value(r), 10) for r in model.ratios)
    premium = _value(model.premium)
    return Solution(plan_of(space, combo, ratios, premium), combo,
                    _value(sense_objective) * M, _value(model.loss) * M,
                    _value(model.payout) * M, status, prob.sol_status,
                    float(prob.solutionTime), None)


class _NotSolved(Exception):
    def __init__(self, status: str, sol_status: int):
        super().__init__(f"{status} (sol_status {sol_status})")
        self.status, self.sol_status = status, sol_status


def _value(x) -> float:
    return float(pulp.value(x)) if not isinstance(x, int | float) else float(x)
