"""The optimiser is exact: on random small plan spaces its answer equals an independent
brute force (tests/optimization/reference.py), for every objective."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimization.milp import InfeasibleError
from optimization.solve import optimize, scenario_set
from tests.optimization import reference


def _space(base, draw):
    deds = draw(st.lists(st.sampled_from([8_000.0, 10_000.0, 15_000.0, 20_000.0]),
                         min_size=1, max_size=2, unique=True))
    caps = draw(st.lists(st.sampled_from([150_000.0, 250_000.0, 300_000.0, None]),
                         min_size=1, max_size=2, unique=True))
    rmin = draw(st.sampled_from([0.5, 0.55, 0.6]))
    width = draw(st.sampled_from([0.05, 0.1]))
    fixed = draw(st.sampled_from([60.0, None]))
    c = base.constraints.model_copy(update={
        "effective_ratio": draw(st.booleans()),
        "effective_ratio_floor": draw(st.sampled_from([0.55, 0.6, 0.65])),
        "ratios_increasing": draw(st.booleans()),
        "no_worse": draw(st.booleans()),
        "profit_cap": draw(st.booleans()),
        "nominal_ratio": draw(st.booleans()),
        "nominal_ratio_floor": 0.6,
        "deductible_income": draw(st.booleans()),
    })
    return base.model_copy(update={
        "deductible": base.deductible.model_copy(update={"candidates": tuple(deds)}),
        "cap": base.cap.model_copy(update={"candidates": tuple(caps)}),
        "bands": base.bands.model_copy(update={"ratio_min": rmin, "ratio_max": rmin + width}),
        "premium": base.premium.model_copy(update={"fixed": fixed, "min": 40.0,
                                                   "max": 90.0}),
        "constraints": c,
        "costs": base.costs.model_copy(update={"disposable_income": 24_000.0}),
        "special": base.special.model_copy(update={
            "cap": draw(st.sampled_from([None, 350_000.0]))}),
    })


@pytest.fixture(scope="module")
def scenarios(small_forecast, space, status_quo):
    sp = space.model_copy(update={"risk": space.risk.model_copy(update={"scenarios": 200}),
                                  "deductible": space.deductible.model_copy(
                                      update={"candidates": (8_000.0,)})})
    return scenario_set(small_forecast, sp, status_quo, seed=3)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data(), objective=st.sampled_from(["min-loss", "break-even", "cvar", "risk"]))
def test_optimum_equals_brute_force(small_forecast, space, status_quo, scenarios, data,
                                    objective):
    sp = _space(space, data.draw)
    if objective == "cvar":
        budget = data.draw(st.sampled_from([1.2e6, 1.5e6, 2.5e6]))
        sp = sp.model_copy(update={"risk": sp.risk.model_copy(update={"cvar_budget": budget})})
    if objective == "risk":
        sp = sp.model_copy(update={"risk": sp.risk.model_copy(update={
            "appetite": data.draw(st.sampled_from(["cvar", "prob_loss"])),
            "prob_loss_max": 0.3})})
    keep = objective in ("break-even", "risk") and data.draw(st.booleans())
    uses = scenarios if objective in ("cvar", "risk") else None
    expected = reference.best(small_forecast, sp, status_quo, objective, uses, keep=keep)
    try:
        opt = optimize(small_forecast, sp, status_quo, objective, scenarios=uses,
                       keep_benefits=keep)
    except InfeasibleError:
        assert expected is None
        return
    assert expected is not None, f"the optimiser found {opt.plan}, brute force nothing"
    score = opt.kpis.expected_loss if objective in ("min-loss", "cvar") \
        else opt.plan.premium_per_capita
    assert score == pytest.approx(expected[0], abs=0.01), (opt.plan, expected[1])
    assert opt.status == "Optimal" and opt.proved
    assert opt.search_loss == pytest.approx(opt.kpis.expected_loss, rel=1e-3, abs=1.0)


def test_premiums_are_on_the_negotiating_step(small_forecast, space, status_quo):
    opt = optimize(small_forecast, space.with_free_premium(), status_quo, "min-loss")
    even = optimize(small_forecast, space, status_quo, "break-even")
    for p in (opt.plan.premium_per_capita, even.plan.premium_per_capita):
        assert p / space.premium.step == pytest.approx(round(p / space.premium.step), abs=1e-9)
    # rounded up: half a step less would not break even
    below = even.plan.premium_per_capita - space.premium.step
    income = below * small_forecast.insured
    loss = even.kpis.expected_payout + space.costs.opex_share * income - income
    assert loss > 0 >= even.kpis.expected_loss


def test_no_worse_off_holds_at_every_cost(small_forecast, space, status_quo):
    """Random proposals of the optimiser (several spaces) against random costs to 2 M."""
    rng = np.random.default_rng(4)
    costs = np.concatenate([rng.uniform(0, 2e6, 20_000), rng.uniform(2e5, 6e5, 20_000)])
    for caps in ((280_000.0, 300_000.0), (250_000.0, None), (300_000.0, 400_000.0)):
        sp = space.model_copy(update={"cap": space.cap.model_copy(
            update={"candidates": caps})})
        opt = optimize(small_forecast, sp, status_quo, "min-loss")
        for special in (False, True):
            flag = np.full(len(costs), special)
            from forecasting.scheme.plan import member_payouts
            assert (member_payouts(opt.plan, costs, flag)
                    >= member_payouts(status_quo, costs, flag) - 0.01).all()


def test_a_lower_cap_that_cuts_the_catastrophic_cases_is_refused(small_forecast, space,
                                                                   status_quo):
    """Today's cap 300 k; a 280 k cap with today's ratios would pay members above ~409 k
    less. With nobody-worse-off on it is never chosen; off, it may be."""
    only_lower = space.model_copy(update={"cap": space.cap.model_copy(
        update={"candidates": (280_000.0,)})})
    opt = optimize(small_forecast, only_lower, status_quo, "min-loss")
    assert opt.plan.cap != 280_000.0 or opt.plan.payout(np.array([5e5]))[0] >= 300_000.0


def test_infeasible_request_names_the_conflict_in_its_units(small_forecast, space,
                                                             status_quo):
    greedy = space.model_copy(update={"constraints": space.constraints.model_copy(
        update={"effective_ratio_floor": 0.95})})
    with pytest.raises(InfeasibleError, match=r"effective_ratio: lower the floor from "
                       r"95\.0% to [0-9.]+% \([0-9.]+ points\)") as caught:
        optimize(small_forecast, greedy, status_quo, "min-loss")
    # the same change as data, for reports in other languages: its figures are the text's
    found = caught.value.changes
    change = next(c for c in found["changes"] if c.get("rule") == "effective_ratio")
    assert found["kind"] == "any" and change["now"] == 0.95 and change["to"] < 0.95
    assert f"to {change['to']:.1%}" in str(caught.value)


def test_infeasible_premium_says_the_premium_needed(small_forecast, space, status_quo):
    poor = space.model_copy(update={"premium": space.premium.model_copy(
        update={"min": 40.0, "max": 45.0, "fixed": None})})
    with pytest.raises(InfeasibleError, match=r"premium budget: max 45 -> [0-9.]+ per capita"
                       ) as caught:
        optimize(small_forecast, poor, status_quo, "break-even")
    change = next(c for c in caught.value.changes["changes"] if c.get("rule") == "premium_max")
    assert change["now"] == 45.0 and f"-> {change['to']:g} per capita" in str(caught.value)


def test_highs_and_cbc_agree_on_branch_and_bound(small_forecast, space, status_quo):
    """Continuous ratios go to branch and bound; both solvers prove the same optimum."""
    cont = space.model_copy(update={"bands": space.bands.model_copy(update={"step": 0.0}),
                                    "cap": space.cap.model_copy(
                                        update={"candidates": (300_000.0,)}),
                                    "deductible": space.deductible.model_copy(
                                        update={"candidates": (15_000.0,)})})
    a = optimize(small_forecast, cont, status_quo, "min-loss", "highs")
    b = optimize(small_forecast, cont, status_quo, "min-loss", "cbc")
    assert a.method == "branch and bound" and a.proved and b.proved
    tol = cont.solver.tolerance * cont.premium.max * small_forecast.insured
    assert a.kpis.expected_loss == pytest.approx(b.kpis.expected_loss, abs=2 * tol)


@pytest.mark.parametrize("objective", ["min-loss", "break-even"])
def test_branch_and_bound_equals_exhaustive_search(small_forecast, space, status_quo,
                                                   objective):
    """The same stepped space, once priced exhaustively and once by branch and bound."""
    small = space.model_copy(update={
        "cap": space.cap.model_copy(update={"candidates": (250_000.0, 300_000.0, None)}),
        "deductible": space.deductible.model_copy(update={"candidates": (12_000.0, 15_000.0)}),
        "bands": space.bands.model_copy(update={"ratio_min": 0.55, "ratio_max": 0.8})})
    forced = small.model_copy(update={"solver": small.solver.model_copy(
        update={"enumeration_limit": 0})})
    a = optimize(small_forecast, small, status_quo, objective, keep_benefits=False)
    b = optimize(small_forecast, forced, status_quo, objective, keep_benefits=False)
    assert a.method == "exhaustive" and b.method == "branch and bound" and b.proved
    key = "expected_loss" if objective == "min-loss" else "premium_per_capita"
    tol = (small.solver.tolerance * small.premium.max * small_forecast.insured
           if objective == "min-loss" else small.premium.step / 10)
    assert getattr(b.kpis, key) == pytest.approx(getattr(a.kpis, key), abs=tol)


def test_continuous_ratios_beat_every_point_of_a_fine_grid(small_forecast, space,
                                                           status_quo):
    """Branch and bound on continuous ratios: no plan of a 1-point grid does better."""
    cont = space.model_copy(update={
        "bands": space.bands.model_copy(update={"step": 0.0, "ratio_min": 0.55,
                                                "ratio_max": 0.8}),
        "cap": space.cap.model_copy(update={"candidates": (250_000.0,)}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)}),
        "constraints": space.constraints.model_copy(update={"no_worse": False}),
        "premium": space.premium.model_copy(update={"fixed": None})})
    opt = optimize(small_forecast, cont, status_quo, "min-loss")
    assert opt.proved and opt.method == "branch and bound"
    fine = cont.model_copy(update={"bands": cont.bands.model_copy(update={"step": 0.01})})
    grid = optimize(small_forecast, fine, status_quo, "min-loss")
    assert grid.method == "exhaustive"
    tol = cont.solver.tolerance * cont.premium.max * small_forecast.insured
    assert opt.kpis.expected_loss <= grid.kpis.expected_loss + tol


@pytest.mark.parametrize("bands", [
    {"ratio_min": 0.5, "ratio_max": 0.88},    # not a whole number of steps: never above max
    {"ratio_min": 0.5, "ratio_max": 0.70},    # today's 75 % top band lies outside the bounds
])
def test_branch_and_bound_off_the_grid_equals_exhaustive(small_forecast, space, status_quo,
                                                         bands):
    """Spaces whose grid is not whole or leaves today's ratios outside: branch and bound
    answers as the exhaustive search does (today's plan is always a candidate)."""
    sp = space.model_copy(update={
        "bands": space.bands.model_copy(update=bands),
        "cap": space.cap.model_copy(update={"candidates": (300_000.0, None)}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)})})
    forced = sp.model_copy(update={"solver": sp.solver.model_copy(
        update={"enumeration_limit": 0})})
    a = optimize(small_forecast, sp, status_quo, "min-loss")
    b = optimize(small_forecast, forced, status_quo, "min-loss")
    assert b.method == "branch and bound" and b.proved
    assert max(b.plan.ratios) <= max(bands["ratio_max"], max(status_quo.ratios)) + 1e-12
    tol = sp.solver.tolerance * sp.premium.max * small_forecast.insured
    assert b.kpis.expected_loss == pytest.approx(a.kpis.expected_loss, abs=tol)


@pytest.mark.parametrize(("section", "field", "now", "lowers"), [
    ("constraints", "effective_ratio_floor", 0.95, True),
    ("constraints", "nominal_ratio_floor", 0.95, True),
    ("constraints", "deductible_income_share", 0.3, False),
])
def test_each_change_named_is_the_least_that_allows_a_plan(small_forecast, space, status_quo,
                                                         section, field, now, lowers):
    """The change named for a rule is the least that lets a plan through, not the setting
    the objective's favourite plan needs once the rule is dropped (min-loss without the
    floor took the meanest plan: "lower the floor from 95 % to 54 %" when 90.6 % allowed
    one): the setting named allows a plan, and one a hundredth of a point less relaxed
    does not."""
    def moved(value):
        sp = space.model_copy(update={
            "deductible": space.deductible.model_copy(update={"candidates": (12_000.0,
                                                                             18_000.0)}),
            "cap": space.cap.model_copy(update={"candidates": (280_000.0, None)}),
            "bands": space.bands.model_copy(update={"ratio_min": 0.5, "ratio_max": 0.9,
                                                    "step": 0.1}),
            "constraints": space.constraints.model_copy(update={
                "no_worse": False, "nominal_ratio": field == "nominal_ratio_floor"})})
        return sp.model_copy(update={section: getattr(sp, section).model_copy(
            update={field: value})})

    rule = {"effective_ratio_floor": "effective_ratio", "nominal_ratio_floor": "nominal_ratio",
            "deductible_income_share": "deductible_income"}[field]
    with pytest.raises(InfeasibleError) as caught:
        optimize(small_forecast, moved(now), status_quo, "min-loss")
    change = next(c for c in caught.value.changes["changes"] if c.get("rule") == rule)
    optimize(small_forecast, moved(change["to"]), status_quo, "min-loss")  # a plan
    tighter = change["to"] + (1e-4 if lowers else -1e-4)
    with pytest.raises(InfeasibleError):
        optimize(small_forecast, moved(tighter), status_quo, "min-loss")


def _cvar_at(space, fixed: float, top: float):
    """One deductible and one cap, a tight CVaR budget on 150 scenarios, no profit cap:
    a fixed premium of `fixed` in a budget of 55 to `top` per capita."""
    return space.model_copy(update={
        "premium": space.premium.model_copy(update={"min": 55.0, "max": top,
                                                    "fixed": fixed}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)}),
        "cap": space.cap.model_copy(update={"candidates": (300_000.0,)}),
        "risk": space.risk.model_copy(update={"cvar_budget": 100_000.0, "scenarios": 150}),
        "constraints": space.constraints.model_copy(update={"profit_cap": False})})


def test_the_premium_named_is_the_nearest_that_allows_a_plan(small_forecast, space,
                                                           status_quo):
    """min-loss and cvar take the highest premium they may: with the budget widened to
    find a premium that allows a plan, the answer was its far end (100 times the budget's
    max, 8,000 per capita); the premium named is the nearest on the step."""
    def at(fixed):
        return _cvar_at(space, fixed, 120.0)

    sc = scenario_set(small_forecast, at(60.0), status_quo, seed=3)
    with pytest.raises(InfeasibleError) as caught:
        optimize(small_forecast, at(60.0), status_quo, "cvar", scenarios=sc)
    change = next(c for c in caught.value.changes["changes"] if c.get("rule") == "premium")
    assert change["to"] <= 120.0
    optimize(small_forecast, at(change["to"]), status_quo, "cvar", scenarios=sc)
    with pytest.raises(InfeasibleError):
        optimize(small_forecast, at(change["to"] - space.premium.step), status_quo, "cvar",
                 scenarios=sc)


def test_a_fixed_premium_named_beyond_the_budget_moves_the_budget_with_it(
        small_forecast, space, status_quo):
    """A fixed premium must lie in the budget: when the premium that allows a plan is above
    the budget's max, the change names the max moved with it, and made as named (both) it
    allows a plan."""
    def at(fixed, top=80.0):
        return _cvar_at(space, fixed, top)

    sc = scenario_set(small_forecast, at(60.0, 120.0), status_quo, seed=3)
    with pytest.raises(InfeasibleError) as caught:
        optimize(small_forecast, at(60.0), status_quo, "cvar", scenarios=sc)
    change = next(c for c in caught.value.changes["changes"] if c.get("rule") == "premium")
    assert change["to"] > 80.0 and change["budget"] == "max"
    optimize(small_forecast, at(change["to"], change["to"]), status_quo, "cvar", scenarios=sc)
