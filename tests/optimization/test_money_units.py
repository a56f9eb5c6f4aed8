"""Nothing in the optimiser is a fixed amount of money: the same portfolio counted in
thousands, CNY or fen (every amount times a) gets the same plan, the same shadow prices
(per natural unit, in its own unit) and the same proofs, and every unit is named in the
portfolio's money unit."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimization.bnb import Box
from optimization.duals import _scenario_gradient
from optimization.milp import InfeasibleError
from optimization.objectives import OBJECTIVES
from optimization.pricing import Group, Pricer, Schedule
from optimization.solve import _notes, agree, context, optimize, scenario_set, shadow_prices
from pipelines.report.labels import unit
from tests.optimization.money import SCALES, forecast_in, plan_in, space_in

scales = st.sampled_from(SCALES)


def _one_combo(space, cap=300_000.0):
    return space.model_copy(update={
        "cap": space.cap.model_copy(update={"candidates": (cap,)}),
        "deductible": space.deductible.model_copy(update={"candidates": (15_000.0,)})})


@settings(max_examples=12, deadline=None)
@given(a=scales, t=st.sampled_from([20_000.0, 150_000.0, 409_000.0, 2_000_000.0]))
def test_claimants_above_a_cost_are_exact_in_every_money_unit(small_forecast, a, t):
    """dLam/dt, the expected claimants above t, was a difference of Lam over 1 unit of
    money: 1,000 CNY in a portfolio counted in thousands (0.12 % off at the cap level)."""
    fc = forecast_in(small_forecast, a)
    special = fc._special()
    for mask in (~special, special):
        group = Group(fc, mask)
        exact = sum(n * (1 - float(s.cdf(t))) for n, s in
                    zip(Group(small_forecast, mask).n, Group(small_forecast, mask).severities,
                        strict=True))
        assert group.survival(t * a) == pytest.approx(exact, rel=1e-9, abs=1e-12)
        h = t * a * 1e-7  # a step that is the same share of the cost in every unit
        lo, hi = group.lam(np.array([t * a, t * a + h]))
        assert (hi - lo) / h == pytest.approx(exact, rel=1e-4, abs=1e-9)


def _per_unit_at_scale_one(table, a):
    """per_unit of each row brought back to the unit of a = 1: a point of a ratio moves
    the objective (money) by a times as much; money per money is the same number."""
    per = table.set_index("constraint")["per_unit"]
    is_point = table.set_index("constraint")["unit"].str.startswith("point")
    return per.where(~is_point, per / a)


@settings(max_examples=8, deadline=None)
@given(a=scales, objective=st.sampled_from(["min-loss", "break-even"]))
def test_shadow_prices_do_not_depend_on_the_money_unit(small_forecast, space, status_quo,
                                                       a, objective):
    """Every shadow price, the cap's included, is the same per natural unit whatever the
    unit of money (they drifted by 0.1 % in thousands)."""
    sp = _one_combo(space)
    base = shadow_prices(optimize(small_forecast, sp, status_quo, objective),
                         small_forecast, sp, status_quo)
    fc, s, q = forecast_in(small_forecast, a), space_in(sp, a), plan_in(status_quo, a)
    table = shadow_prices(optimize(fc, s, q, objective), fc, s, q)
    assert list(table["constraint"].str.replace(r"_[\d.]+$", "", regex=True)) == list(
        base["constraint"].str.replace(r"_[\d.]+$", "", regex=True))
    assert (table["binding"].to_numpy() == base["binding"].to_numpy()).all()
    got, want = _per_unit_at_scale_one(table, a), _per_unit_at_scale_one(base, 1.0)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6, atol=1e-9)
    cap = table.set_index("constraint").loc["cap", "per_unit"]
    assert cap == pytest.approx(base.set_index("constraint").loc["cap", "per_unit"],
                                rel=1e-9)


@pytest.mark.parametrize("a", [0.001, 1.0, 100.0])
def test_scenario_payouts_are_linearised_exactly_in_every_unit(small_forecast, space,
                                                               status_quo, a):
    """Each scenario's dP/dr: the members at the cap gain nothing; their number was a
    difference of the scenario's sums over 1 unit of money (1,000 CNY in thousands)."""
    fc, s, q = forecast_in(small_forecast, a), space_in(space, a), plan_in(status_quo, a)
    s = s.model_copy(update={"risk": s.risk.model_copy(update={"scenarios": 1000})})
    sc = scenario_set(fc, s, q)
    pricer = Pricer(fc, s, sc)
    prices = pricer.price_plan(q.with_(cap=100_000.0 * a))  # binds for many members
    eps = 1e-7  # moves the cap level by a ten-millionth of a band: no cost in between
    for sums, sched in zip(pricer._sums, (prices.general, prices.special), strict=True):
        if not np.isfinite(sched.x_cap[0]):
            continue
        payout, grad = _scenario_gradient(sums, sched)
        for k in range(grad.shape[1]):
            moved = sched.ratios.copy()
            moved[0, k] += eps
            after = sums.payout(Schedule(sched.lower, sched.upper, moved, sched.cap))[0]
            fd = (after - payout) / eps
            np.testing.assert_allclose(grad[:, k], fd, rtol=1e-4,
                                       atol=1e-5 * np.abs(fd).max())


@settings(max_examples=20, deadline=None)
@given(a=scales, off=st.sampled_from([2e-3, 1e-4]))
def test_the_search_and_the_evaluator_agree_by_a_share_never_an_amount(a, off):
    """A search's payout 0.2 % off the evaluator's is not "agreeing" in any unit (a floor
    of 1 unit of money let a portfolio counted in millions through at any error)."""
    for payout in (0.4, 120e6):
        got = agree(payout * a, payout * a * (1 + off))
        assert got == (off <= 1e-3)
    assert agree(0.0, 0.0)


@settings(max_examples=12, deadline=None)
@given(a=scales, excess=st.sampled_from([1e-4, 0.0]))
def test_a_surplus_above_the_profit_cap_is_said_in_every_unit(space, status_quo, a,
                                                              excess):
    """The note on a surplus above the profit cap: a surplus 0.01 % of premium above it
    is above it in every unit (an allowance of 1 unit of money hid it in thousands)."""
    s = space_in(space, a)
    ctx = context(SimpleNamespace(insured=1e4, currency="CNY"), s, status_quo)
    income = 1e5 * a
    share = s.contract.profit_cap_share
    kpis = SimpleNamespace(premium_income=income, premium_per_capita=10 * a,
                           expected_loss=-(share + excess) * income)
    notes = _notes(ctx, OBJECTIVES["break-even"], kpis)
    assert bool(notes) == (excess > 0)


@settings(max_examples=20, deadline=None)
@given(a=scales, share=st.sampled_from([1e-6, 1e-8, 1e-12]))
def test_a_box_of_cap_levels_is_split_alike_in_every_unit(a, share):
    """Branch and bound splits a box of cap levels until it is within float rounding of
    its level, a share: a floor of 1e-3 units stopped a portfolio in thousands at 1 CNY
    and one in fen at a thousandth of a fen."""
    lo = 409_000.0 * a
    box = Box(((0, lo, lo * (1 + share)),))
    assert box.narrow == (share < 1e-9)
    if not box.narrow:
        left, right = box.split({0: lo * (1 + share / 3)})
        assert left.bounds[0][2] == right.bounds[0][1] == lo * (1 + share / 3)
    open_box = Box(((0, lo, np.inf),))  # the lowest ratios never reach the cap
    assert not open_box.narrow
    left, right = open_box.split({})
    assert left.bounds[0] == (0, lo, 2 * lo) and right.bounds[0] == (0, 2 * lo, np.inf)


@pytest.mark.parametrize("a", [0.001, 100.0])
def test_branch_and_bound_from_a_ratio_of_zero_in_every_unit(small_forecast, space,
                                                             status_quo, a):
    """With ratio_min = 0 the lowest ratios never reach the cap: the box of cap levels is
    open (no stand-in of 1e12 units), and branch and bound still finds the exhaustive
    search's plan."""
    sp = _one_combo(space).model_copy(update={"bands": space.bands.model_copy(
        update={"ratio_min": 0.0, "ratio_max": 0.9, "step": 0.1}),
        "constraints": space.constraints.model_copy(update={"no_worse": False})})
    fc, s, q = forecast_in(small_forecast, a), space_in(sp, a), plan_in(status_quo, a)
    exact = optimize(fc, s, q, "min-loss")
    bnb = optimize(fc, s.model_copy(update={"solver": s.solver.model_copy(
        update={"enumeration_limit": 0})}), q, "min-loss")
    assert bnb.method == "branch and bound" and bnb.status == "Optimal"
    tol = s.solver.tolerance * s.premium.max * fc.insured
    assert bnb.kpis.expected_loss == pytest.approx(exact.kpis.expected_loss, abs=tol)


def test_units_name_the_portfolios_money(small_forecast, space, status_quo):
    """shadow_prices.csv and plan.json name the forecast's money unit ("HKD of cap"), never
    CNY; the report reads both these and the "CNY of cap" of plans made before."""
    fc = replace(small_forecast, provenance={**small_forecast.provenance, "currency": "HKD"})
    sp = _one_combo(space)
    for objective in ("min-loss", "break-even"):
        table = shadow_prices(optimize(fc, sp, status_quo, objective), fc, sp, status_quo)
        words = " ".join(table["unit"]) + " ".join(table["objective_unit"])
        assert "CNY" not in words and "HKD of cap" in words, words
        for name in {*table["unit"], *table["objective_unit"]}:
            assert unit(name, "zh", "HKD") != name, name
    assert unit("HKD of cap", "zh", "HKD") == unit("CNY of cap", "zh", "HKD") == "封顶线1 HKD"
    assert unit("HKD of cap", "en", "HKD") == "HKD of cap"
    # an infeasible request names the rule's unit in the money unit too
    tight = sp.model_copy(update={"constraints": sp.constraints.model_copy(
        update={"effective_ratio_floor": 0.99})})
    with pytest.raises(InfeasibleError) as err:
        optimize(fc, tight, status_quo, "min-loss")
    assert "CNY" not in str(err.value)
