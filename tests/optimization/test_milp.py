"""The MILP against brute force, its duals against perturbation, infeasibility, CVaR."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimization import coefficients as co
from optimization.evaluate import cvar, evaluate_plan
from optimization.milp import InfeasibleError, build, solve
from optimization.solve import optimize, scenario_set, shadow_prices


def _feasible(plan, kpis, space, status_quo) -> bool:
    c = space.constraints
    levels = np.array(c.no_worse_levels)
    return (kpis.effective_ratio >= c.effective_ratio_floor - 1e-12
            and plan.deductible <= c.deductible_income_share * space.costs.disposable_income
            and all(np.diff(plan.ratios) >= 0)
            and (plan.payout(levels) >= status_quo.payout(levels) - 1e-6).all()
            and -kpis.expected_loss <= space.contract.profit_cap_share * kpis.premium_income)


def test_milp_equals_brute_force(small_forecast, small_space, status_quo):
    """Enumerate every plan of a small space with the evaluator; the MILP finds the best."""
    space = small_space
    steps = np.round(np.arange(space.bands.ratio_min, space.bands.ratio_max + 1e-9,
                               space.bands.step), 10)
    best = None
    for combo in co.combos(space, status_quo):
        for ratios in itertools.combinations_with_replacement(steps, 4):  # non-decreasing
            plan = co.plan_of(space, combo, ratios, space.premium.fixed)
            kpis = evaluate_plan(plan, small_forecast, space.costs)
            if _feasible(plan, kpis, space, status_quo) and (
                    best is None or kpis.expected_loss < best.expected_loss - 1e-9):
                best = kpis
    opt = optimize(small_forecast, space, status_quo, "min-loss")
    assert best is not None
    assert opt.kpis.expected_loss == pytest.approx(best.expected_loss, rel=1e-9, abs=1e-3)
    assert _feasible(opt.plan, opt.kpis, space, status_quo)
    # the LP's own objective at the returned plan agrees with the evaluator
    assert opt.lp_loss == pytest.approx(opt.kpis.expected_loss, rel=1e-3)


def test_highs_and_cbc_agree(small_forecast, small_space, status_quo):
    a = optimize(small_forecast, small_space, status_quo, "min-loss", "highs")
    b = optimize(small_forecast, small_space, status_quo, "min-loss", "cbc")
    assert a.kpis.expected_loss == pytest.approx(b.kpis.expected_loss, rel=1e-7)


def test_dual_predicts_the_change_of_a_binding_constraint(small_forecast, space, status_quo):
    """Discrete choices fixed, ratios continuous: moving a binding right-hand side by a small
    step changes the optimum by dual x step (within 1 %)."""
    opt = optimize(small_forecast, space, status_quo, "min-loss")
    coef = opt.coefficients
    fixed = (co.Combo(opt.plan.deductible, opt.plan.cap), opt.plan.ratios)

    def solved(bump: dict[str, float]):
        model = build(space, coef, small_forecast.insured, status_quo, "min-loss", fixed=fixed)
        for name, step in bump.items():
            model.problem.get_constraint_by_name(name).constant -= step
        sol = solve(model, space, coef, model.loss, "highs")
        return model, sol.objective_cny

    model, base = solved({})
    binding = [(c.name, c.pi) for c in model.problem.constraints()
               if abs(c.slack or 0) < 1e-9 and abs(c.pi or 0) > 1e-9]
    assert binding, "expected at least one binding constraint"
    for name, pi in binding:
        step = 1e-3
        _, moved = solved({name: step})
        predicted = pi * step * 1e6  # model in CNY millions
        assert moved - base == pytest.approx(predicted, rel=0.01), name
    table = shadow_prices(opt, small_forecast, space, status_quo)
    assert set(table.loc[table["binding"], "constraint"]) == {n for n, _ in binding}


def test_infeasible_request_names_the_conflict(small_forecast, space, status_quo):
    greedy = space.model_copy(update={"constraints": space.constraints.model_copy(
        update={"effective_ratio_floor": 0.95})})
    with pytest.raises(InfeasibleError, match=r"effective_ratio by [0-9.]+"):
        optimize(small_forecast, greedy, status_quo, "min-loss")


def test_cvar_budget_holds_and_lp_cvar_is_exact(small_forecast, space, status_quo):
    sc = scenario_set(small_forecast, space, status_quo, seed=1)
    free = optimize(small_forecast, space, status_quo, "min-loss", scenarios=sc)
    budget = free.kpis.cvar95_loss * 0.98 if free.kpis.cvar95_loss > 0 else \
        free.kpis.cvar95_loss - 1e4
    tight = space.model_copy(update={"risk": space.risk.model_copy(
        update={"cvar_budget": budget}), "premium": space.premium.model_copy(
        update={"fixed": None})})
    opt = optimize(small_forecast, tight, status_quo, "cvar", scenarios=sc)
    losses = sc.payouts(opt.plan) + opt.kpis.operating_cost - opt.kpis.premium_income
    assert cvar(losses, 0.95) <= budget * (1 + 1e-6) + 1.0
    assert opt.kpis.cvar95_loss == pytest.approx(cvar(losses, 0.95))
