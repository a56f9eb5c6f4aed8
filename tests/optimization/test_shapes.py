"""Plan spaces of other shapes than today's plan: another number of bands, money in
another unit. Branch and bound and the exhaustive search give the same answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.claims import ClaimsModel
from forecasting.scheme.plan import Plan
from forecasting.simulate import lcity_plan
from optimization.pricing import schedules_of
from optimization.rules import no_worse_mask
from optimization.solve import optimize


def _bands(space, edges, rmin=0.6, rmax=0.8, step=0.1):
    return space.model_copy(update={
        "bands": space.bands.model_copy(update={"edges": edges, "ratio_min": rmin,
                                                "ratio_max": rmax, "step": step}),
        "deductible": space.deductible.model_copy(update={"candidates": (12_000.0,)}),
        "cap": space.cap.model_copy(update={"candidates": (None,)})})


@pytest.mark.parametrize("edges", [(60_000.0,), (40_000.0, 80_000.0, 120_000.0, 250_000.0,
                                                 400_000.0)])
def test_branch_and_bound_on_another_number_of_bands_than_today(small_forecast, space,
                                                                 status_quo, edges):
    """Today's ratios (four bands) have no place in a space of two or six bands: the
    exhaustive search leaves them out, and so must branch and bound (it priced them
    under the space's edges and crashed on the shapes)."""
    sp = _bands(space, edges)
    exact = optimize(small_forecast, sp, status_quo, "min-loss")
    bnb = optimize(small_forecast, sp.model_copy(update={"solver": sp.solver.model_copy(
        update={"enumeration_limit": 0})}), status_quo, "min-loss")
    assert exact.method == "exhaustive" and bnb.method == "branch and bound"
    assert bnb.status == "Optimal"
    tol = sp.solver.tolerance * sp.premium.max * small_forecast.insured
    assert bnb.kpis.expected_loss == pytest.approx(exact.kpis.expected_loss, abs=tol)


@settings(max_examples=30, deadline=None)
@given(scale=st.sampled_from([0.001, 0.01, 1.0, 100.0]),
       short=st.sampled_from([0.5, 3.0, 20.0]), special=st.booleans())
def test_nobody_worse_off_by_any_amount_at_any_money_scale(scale, short, special):
    """A proposal paying `short` CNY less than today to everyone above the deductible is
    someone worse off, whatever unit the money is counted in (a fixed tolerance of 0.01
    units let a portfolio in thousands pay 10 CNY less)."""
    today = lcity_plan(60.0)
    a = scale
    today = Plan(60.0 * a, today.deductible * a, tuple(e * a for e in today.band_edges),
                 today.ratios, today.cap * a, today.special)
    worse = today.with_(deductible=today.deductible + short / today.ratios[0] * a)
    new, old = schedules_of(worse), schedules_of(today)
    g = 1 if special else 0
    assert not no_worse_mask(new[g], old[g])[0]
    assert no_worse_mask(old[g], old[g])[0]


def test_the_optimum_does_not_depend_on_the_unit_of_money(small_city, space, status_quo):
    """The same portfolio counted in thousands of CNY gets the same plan, its money terms
    divided by 1000: a deductible 5 CNY above today's (15.005 thousand) pays every claimant
    3 CNY less and is not "nobody worse off"."""
    a = 0.001
    claims = small_city.claims.assign(eligible_cost=small_city.claims["eligible_cost"] * a)
    fc = ClaimsModel().fit(aggregate(small_city.members, annual_costs(
        small_city.members, claims)).until(2021)).forecast(2022)
    today = Plan(60.0 * a, 15_000.0 * a, tuple(e * a for e in status_quo.band_edges),
                 status_quo.ratios, status_quo.cap * a, status_quo.special)
    sp = space.model_copy(update={
        "deductible": space.deductible.model_copy(update={"candidates": (15_005.0 * a,)}),
        "cap": space.cap.model_copy(update={"candidates": (300_000.0 * a,)}),
        "bands": space.bands.model_copy(update={
            "edges": tuple(e * a for e in space.bands.edges), "ratio_min": 0.6,
            "ratio_max": 0.75}),
        "premium": space.premium.model_copy(update={
            "min": 55 * a, "max": 80 * a, "fixed": 60 * a, "step": 0.5 * a}),
        "costs": space.costs.model_copy(update={"disposable_income": 31_500 * a}),
        "report": space.report.model_copy(update={
            "cost_levels": tuple(x * a for x in space.report.cost_levels)})})
    opt = optimize(fc, sp, today, "min-loss")
    assert opt.status == "Optimal"
    assert opt.plan.deductible == today.deductible
    assert (opt.plan.payout(np.array([20_000.0 * a])) >= today.payout(
        np.array([20_000.0 * a]))).all()
