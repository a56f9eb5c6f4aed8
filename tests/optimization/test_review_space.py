"""Spaces unlike the built-in city's, checked against the brute force
(tests/optimization/reference.py): a portfolio without special groups asked a risk
question, and branch and bound on spaces where today's ratios lie off the grid or today
pays its last ratio on every CNY above the last band edge."""

from __future__ import annotations

from dataclasses import replace

import pytest

from optimization.milp import InfeasibleError
from optimization.solve import optimize, scenario_set
from tests.optimization import reference


def _forced(space):
    """The same space searched by branch and bound instead of exhaustively."""
    return space.model_copy(update={"solver": space.solver.model_copy(
        update={"enumeration_limit": 0})})


@pytest.mark.parametrize("objective", ["risk", "cvar"])
def test_a_portfolio_without_special_groups_gets_its_scenario_questions(
        small_forecast, space, status_quo, objective):
    """No cohort is special: the special groups' scenario sums hold nothing, and the lower
    special deductible of the plan must not be refused as below their floor."""
    fc = replace(small_forecast, cohorts=small_forecast.cohorts.assign(special_group=False))
    sp = space.model_copy(update={
        "risk": space.risk.model_copy(update={"scenarios": 100, "cvar_budget": 3e6}),
        "premium": space.premium.model_copy(update={"max": 150.0}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)}),
        "cap": space.cap.model_copy(update={"candidates": (300_000.0,)}),
        "bands": space.bands.model_copy(update={"ratio_min": 0.6, "ratio_max": 0.75})})
    sc = scenario_set(fc, sp, status_quo, seed=4)
    keep = objective == "risk"
    expected = reference.best(fc, sp, status_quo, objective, sc, keep=keep)
    assert expected is not None
    opt = optimize(fc, sp, status_quo, objective, scenarios=sc, keep_benefits=keep)
    score = opt.plan.premium_per_capita if objective == "risk" else opt.kpis.expected_loss
    assert opt.proved and score == pytest.approx(expected[0], abs=1.0)


def test_branch_and_bound_keeps_today_s_final_ratio_without_a_cap(small_forecast, space,
                                                                  status_quo):
    """Today pays 75 % (special groups 80 %) of every CNY above 200 k without a cap: an
    uncapped proposal must too, beyond every breakpoint. Today's own ratios are below the
    nominal floor, so the answer is not today's plan."""
    today = status_quo.with_(ratios=(0.57, 0.62, 0.67, 0.75), cap=None)
    sp = space.model_copy(update={
        "cap": space.cap.model_copy(update={"candidates": (None,)}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)}),
        "bands": space.bands.model_copy(update={"ratio_min": 0.55, "ratio_max": 0.8}),
        "constraints": space.constraints.model_copy(update={"nominal_ratio": True,
                                                            "nominal_ratio_floor": 0.6})})
    expected = reference.best(small_forecast, sp, today, "min-loss")
    assert expected is not None and expected[1].ratios[-1] >= 0.75
    opt = optimize(small_forecast, _forced(sp), today, "min-loss")
    assert opt.method == "branch and bound" and opt.proved
    assert reference.no_worse(opt.plan, today)
    tol = sp.solver.tolerance * sp.premium.max * small_forecast.insured
    assert opt.kpis.expected_loss == pytest.approx(expected[0], abs=tol)


@pytest.mark.parametrize("objective", ["min-loss", "break-even"])
def test_branch_and_bound_tries_today_s_ratios_under_every_combo(small_forecast, space,
                                                                 status_quo, objective):
    """Today's ratios lie below the bounds; with a lower cap or deductible they make the
    best plan of the space (the brute force tries them under every combo, as the
    exhaustive search does)."""
    today = status_quo.with_(ratios=(0.5, 0.55, 0.6, 0.65))
    sp = space.model_copy(update={
        "cap": space.cap.model_copy(update={"candidates": (250_000.0,)}),
        "deductible": space.deductible.model_copy(update={"candidates": (18_000.0,)}),
        "bands": space.bands.model_copy(update={"ratio_min": 0.6, "ratio_max": 0.7}),
        "premium": space.premium.model_copy(update={"min": 30.0, "max": 120.0,
                                                   "step": 0.01}),
        "constraints": space.constraints.model_copy(update={
            "no_worse": False, "effective_ratio": False, "profit_cap": False})})
    expected = reference.best(small_forecast, sp, today, objective)
    assert expected is not None and expected[1].ratios == today.ratios
    assert (expected[1].deductible, expected[1].cap) != (today.deductible, today.cap)
    try:
        opt = optimize(small_forecast, _forced(sp), today, objective, keep_benefits=False)
    except InfeasibleError:
        pytest.fail("branch and bound found no plan; brute force did")
    assert opt.method == "branch and bound" and opt.proved
    if objective == "min-loss":
        tol = sp.solver.tolerance * sp.premium.max * small_forecast.insured
        assert opt.kpis.expected_loss == pytest.approx(expected[0], abs=tol)
    else:
        assert opt.plan.premium_per_capita == pytest.approx(expected[0], abs=sp.premium.step / 10)


def test_no_plan_found_without_proof_is_not_called_a_conflict(small_forecast, space,
                                                              status_quo, monkeypatch):
    """Branch and bound that finds nothing and leaves a gap has proved nothing: the error
    says so, and names no rule as in conflict (the explanation searches are not run)."""
    from optimization import solve
    from optimization.search import Searched

    monkeypatch.setattr(solve, "search", lambda *a, **k: Searched(
        None, 12, "branch and bound", False, float("inf")))
    monkeypatch.setattr(solve, "explain_infeasible", lambda *a, **k: pytest.fail(
        "an unproved search was explained as a conflict of rules"))
    with pytest.raises(InfeasibleError, match="not proved that none exists") as err:
        optimize(small_forecast, space, status_quo, "min-loss")
    assert err.value.changes == {"kind": "unproved", "changes": []}
