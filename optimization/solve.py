"""Solve the negotiator's questions on a Forecast: min-loss, break-even, CVaR; shadow
prices with the discrete choices fixed; the loss-benefit frontier; why a request is
infeasible. Every reported figure is the evaluator's."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pulp

from forecasting.forecast import Forecast, ScenarioSet
from forecasting.scheme.plan import Plan
from optimization import coefficients as co
from optimization.evaluate import PlanKPIs, evaluate_plan
from optimization.milp import (
    OBJECTIVES,
    InfeasibleError,
    M,
    Solution,
    _NotSolved,
    _soft,
    build,
    solve,
)
from optimization.space import PlanSpace

MAX_RELINEARISE = 6


@dataclass(frozen=True)
class Optimum:
    """An optimal plan with the evaluator's KPIs and what the solver said."""

    objective: str
    plan: Plan
    kpis: PlanKPIs
    lp_loss: float            # the LP's expected loss at the plan (CNY)
    status: str
    sol_status: int
    solver: str
    seconds: float
    relinearisations: int
    coefficients: co.Coefficients


def _scenarios_floor(space: PlanSpace, status_quo: Plan) -> float:
    lows = [*space.deductible.candidates, status_quo.deductible]
    return min(lows) * space.special.deductible_factor


def scenario_set(forecast: Forecast, space: PlanSpace, status_quo: Plan,
                 seed: int = 0) -> ScenarioSet:
    """Scenarios deep enough for every deductible the space can choose."""
    return forecast.scenarios(space.risk.scenarios, seed,
                              floor=_scenarios_floor(space, status_quo))


def _objective_expr(model, objective: str, space: PlanSpace, coef: co.Coefficients):
    if objective == "break-even":
        model.problem += model.loss <= 0, "break_even"
        return model.premium
    if objective == "cvar":
        _add_cvar(model, space, coef)
    return model.loss


def _add_cvar(model, space: PlanSpace, coef: co.Coefficients, soft=None) -> None:
    """CVaR of the loss <= budget over the scenarios (Rockafellar-Uryasev, linear)."""
    if coef.scen_general is None:
        raise ValueError("the cvar objective needs scenario coefficients")
    prob, w, u = model.problem, model.w, model.u
    S, n_combo, K = coef.scen_general.shape
    inc = space.special.ratio_increment
    alpha = space.risk.cvar_level
    eta = prob.add_variable("cvar_eta")
    xi = [prob.add_variable(f"cvar_xi{s}", lowBound=0) for s in range(S)]
    fixed_part = model.loss - model.payout  # opex - income: the same in every scenario
    for s in range(S):
        terms = [((coef.scen_general[s, i, k] + coef.scen_special[s, i, k]) / M, u[i][k])
                 for i in range(n_combo) for k in range(K)]
        terms += [(inc * coef.scen_special[s, i].sum() / M, w[i]) for i in range(n_combo)]
        if all(isinstance(v, pulp.LpVariable) for _, v in terms):
            payout_s = pulp.LpAffineExpression([(v, a) for a, v in terms])  # fast path
        else:  # discrete choices fixed: u and w are expressions and numbers
            payout_s = pulp.lpSum(a * v for a, v in terms)
        prob += xi[s] >= payout_s + fixed_part - eta, f"cvar_scenario_{s}"
    tail = eta + pulp.lpSum(xi) / ((1 - alpha) * S)
    if soft is None:
        prob += tail <= space.risk.cvar_budget / M, "cvar_budget"
    else:
        soft(tail, "<=", space.risk.cvar_budget / M, "cvar_budget", "CNY M of CVaR")


def optimize(forecast: Forecast, space: PlanSpace, status_quo: Plan, objective: str,
             solver_name: str | None = None, scenarios: ScenarioSet | None = None,
             keep_benefits: bool | None = None, floor: float | None = None,
             start: tuple[float, ...] | None = None) -> Optimum:
    """The optimal plan for `objective` (min-loss, break-even or cvar).

    break-even keeps today's benefits unless keep_benefits=False. Ties are broken in the
    members' favour: a second stage maximises expected payout at the optimal objective.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
    keep = (objective == "break-even") if keep_benefits is None else keep_benefits
    combos = co.combos(space, status_quo)
    ratios = start or tuple(np.clip(status_quo.ratios, space.bands.ratio_min,
                                    space.bands.ratio_max))
    if objective == "cvar" and scenarios is None:
        scenarios = scenario_set(forecast, space, status_quo)
    t0 = time.perf_counter()
    sums = co.scenario_sums(space, scenarios, combos) if objective == "cvar" else None
    visited: list[Solution] = []
    for iteration in range(1, MAX_RELINEARISE + 1):  # noqa: B007 (reported below)
        coef = co.compute(space, forecast, combos, ratios, sums)
        stage = _Stages(forecast, space, status_quo, objective, coef, solver_name, keep, floor)
        sol = stage.first()
        if _converged(sol, coef):
            # ties go to the members, then check the tie-break kept the linearisation
            sol = stage.second(sol)
            if _converged(sol, coef):
                break
        if any(v.combo == sol.combo and v.plan.ratios == sol.plan.ratios for v in visited):
            # near-ties can make the linearisation cycle: take the best visited plan, judged
            # by the exact evaluator
            sol = _best_exact([*visited, sol], forecast, space, objective, scenarios, floor)
            break
        visited.append(sol)
        ratios = sol.plan.ratios
    seconds = time.perf_counter() - t0
    kpis = evaluate_plan(sol.plan, forecast, space.costs, scenarios,
                         cvar_level=space.risk.cvar_level)
    return Optimum(objective, sol.plan, kpis, sol.loss_cny, sol.status, sol.sol_status,
                   solver_name or space.solver.name, seconds, iteration, coef)


def _best_exact(candidates: list[Solution], forecast: Forecast, space: PlanSpace,
                objective: str, scenarios: ScenarioSet | None, floor: float | None
                ) -> Solution:
    """The candidate with the best exact objective among those exactly feasible."""
    c = space.constraints
    floor = c.effective_ratio_floor if floor is None else floor

    def score(sol: Solution) -> tuple[bool, float]:
        k = evaluate_plan(sol.plan, forecast, space.costs,
                          scenarios if objective == "cvar" else None,
                          cvar_level=space.risk.cvar_level)
        ok = (not c.effective_ratio or k.effective_ratio >= floor - 1e-9) and (
            not c.profit_cap
            or -k.expected_loss <= space.contract.profit_cap_share * k.premium_income + 1.0)
        if objective == "cvar":
            ok = ok and k.cvar95_loss <= space.risk.cvar_budget + 1.0
        value = k.premium_per_capita if objective == "break-even" else k.expected_loss
        return (not ok, value)

    return min(candidates, key=score)


def _converged(sol: Solution, coef: co.Coefficients) -> bool:
    """The plan's cap cost level is the one its coefficients assumed (both may be inf)."""
    x_new = sol.plan.capped_cost()
    x_used = coef.x_caps[coef.combos.index(sol.combo)]
    return x_new == x_used or abs(x_new - x_used) < 1.0


@dataclass
class _Stages:
    """Stage one optimises the objective; stage two, at that optimum, pays members most."""

    forecast: Forecast
    space: PlanSpace
    status_quo: Plan
    objective: str
    coef: co.Coefficients
    solver_name: str | None
    keep: bool
    floor: float | None

    def _fresh(self):
        model = build(self.space, self.coef, self.forecast.insured, self.status_quo,
                      self.objective, keep_benefits=self.keep, floor=self.floor)
        return model, _objective_expr(model, self.objective, self.space, self.coef)

    def first(self) -> Solution:
        model, expr = self._fresh()
        try:
            return solve(model, self.space, self.coef, expr, self.solver_name)
        except _NotSolved as exc:
            if exc.status == "Infeasible":
                raise InfeasibleError(explain_infeasible(
                    self.forecast, self.space, self.status_quo, self.objective, self.coef,
                    self.keep, self.floor)) from None
            raise InfeasibleError(f"the solver stopped without a plan: {exc}") from None

    def second(self, first: Solution) -> Solution:
        model, expr = self._fresh()
        tol = max(abs(first.objective_cny) * 1e-7, 1.0) / M
        model.problem += expr <= first.objective_cny / M + tol, "stay_optimal"
        try:
            return solve(model, self.space, self.coef, model.payout, self.solver_name,
                         maximize=True)
        except _NotSolved:
            return first


def explain_infeasible(forecast, space, status_quo, objective, coef, keep, floor) -> str:
    """Relax every benefit constraint with a slack, minimise total violation, name them."""
    model = build(space, coef, forecast.insured, status_quo, objective, keep_benefits=keep,
                  elastic=True, floor=floor)
    if objective == "break-even":
        model.problem += model.loss <= 0, "break_even"
    elif objective == "cvar":
        _add_cvar(model, space, coef, soft=_soft(model, elastic=True))
    try:
        solve(model, space, coef, pulp.lpSum(model.slacks.values()))
    except _NotSolved:
        return "no plan meets the constraints, and relaxing them did not help"
    short = [f"{name} by {pulp.value(s):.4g} {model.units[name]}"
             for name, s in model.slacks.items() if pulp.value(s) > 1e-7]
    if not short:
        return "no plan meets the constraints (the conflict is outside the benefit rules)"
    return "no plan meets every constraint; the least change that would allow one: " + \
        "; ".join(short)


def shadow_prices(opt: Optimum, forecast: Forecast, space: PlanSpace, status_quo: Plan,
                  solver_name: str | None = None) -> pd.DataFrame:
    """With the deductible and cap fixed and ratios continuous, each constraint's dual:
    what one more unit of its right-hand side changes in the objective (CNY)."""
    coef = opt.coefficients
    fixed = (co.Combo(opt.plan.deductible, opt.plan.cap), opt.plan.ratios)
    model = build(space, coef, forecast.insured, status_quo, opt.objective, fixed=fixed,
                  keep_benefits=opt.objective == "break-even")
    expr = _objective_expr(model, opt.objective, space, coef)
    solve(model, space, coef, expr, solver_name or "highs")
    rows = []
    above = pulp.value(model.above) * M
    for c in model.problem.constraints():
        name = c.name
        if name.startswith(("lin_", "cvar_scenario")) or c.pi is None:
            continue
        per_unit, unit = _per_unit(name, float(c.pi), above, opt.objective)
        rows.append({"constraint": name, "dual": float(c.pi), "slack": float(c.slack or 0.0),
                     "binding": abs(c.slack or 0.0) < 1e-7 and abs(c.pi) > 1e-12,
                     "per_unit": per_unit, "unit": unit,
                     "objective_unit": "CNY of premium per capita"
                     if opt.objective == "break-even" else "CNY of expected loss"})
    return pd.DataFrame(rows)


UNITS = {  # natural unit of each constraint, and its size in the model's right-hand side
    "effective_ratio": "point of effective ratio", "no_worse": "CNY paid at that cost",
    "profit_cap": "CNY of surplus", "break_even": "CNY of loss", "cvar_budget": "CNY of CVaR",
    "premium_budget": "CNY of premium per capita", "deductible_income": "CNY of deductible",
    "ratios_increasing": "point of ratio", "keep_ratio": "point of ratio"}


def _per_unit(name: str, pi: float, above: float, objective: str) -> tuple[float, str]:
    """The dual in objective units (CNY of loss, or CNY of premium per capita for
    break-even) per natural unit of the constraint, and that unit."""
    key = next((k for k in UNITS if name.startswith(k)), None)
    if key is None:
        return float("nan"), ""
    rhs = {"effective_ratio": 0.01 * above / M, "no_worse": 1e-3, "deductible_income": 1e-3,
           "profit_cap": 1 / M, "break_even": 1 / M, "cvar_budget": 1 / M,
           "premium_budget": 1.0, "ratios_increasing": 0.01, "keep_ratio": 0.01}[key]
    scale = 1.0 if objective == "break-even" else M
    return pi * rhs * scale, UNITS[key]


def frontier(forecast: Forecast, space: PlanSpace, status_quo: Plan, floors: np.ndarray,
             solver_name: str | None = None) -> pd.DataFrame:
    """Min expected loss at each effective-ratio floor: the loss-benefit frontier."""
    rows, start = [], None
    for floor in floors:
        try:
            opt = optimize(forecast, space, status_quo, "min-loss", solver_name, floor=floor,
                           start=start)
        except InfeasibleError:
            rows.append({"floor": floor, "feasible": False})
            continue
        start = opt.plan.ratios
        rows.append({"floor": floor, "feasible": True, "expected_loss": opt.kpis.expected_loss,
                     "effective_ratio": opt.kpis.effective_ratio,
                     "expected_payout": opt.kpis.expected_payout,
                     "deductible": opt.plan.deductible,
                     "ratios": " / ".join(f"{r:.0%}" for r in opt.plan.ratios)})
    return pd.DataFrame(rows)
