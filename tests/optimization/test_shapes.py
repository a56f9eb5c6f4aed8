"""Plan spaces of other shapes than today's plan: another number of bands, money in
another unit. Branch and bound and the exhaustive search give the same answer."""

from __future__ import annotations

import pytest

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
