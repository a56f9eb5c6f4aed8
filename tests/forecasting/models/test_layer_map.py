"""The layered map of partial annual costs: exact layer totals, increasing, the plain
scaling when every layer grows alike, None when no map can reach the targets; and on a
simulated city the completed year's payouts close to the complete data's."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.data.dataset import load_data
from forecasting.data.options import DataOptions
from forecasting.models.completion import developed
from forecasting.models.layer_map import layer_edges, layer_totals, layered_map
from forecasting.scheme.accounts import year_result
from pipelines.workflows.builtin import builtin_data

EDGES = np.array([1_000.0, 5_000.0, 20_000.0, 80_000.0])


def _costs(seed: int, n: int = 400) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(8.5, 1.3, n)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), stretch=st.lists(st.floats(1.0, 1.6), min_size=5,
                                                       max_size=5),
       scale=st.floats(1.0, 1.2))
def test_the_map_reaches_layer_totals_made_by_a_known_map(seed, stretch, scale):
    """Targets made by an increasing piecewise-linear map of the costs (each layer of the
    known costs stretched by its own factor): the map found reproduces every layer total
    and increases with the cost."""
    x = _costs(seed)
    knots = np.r_[0.0, EDGES]
    image = np.r_[0.0, np.cumsum(np.diff(knots) * np.asarray(stretch[:4]))]
    truth = np.where(x > knots[-1], image[-1] + stretch[4] * (x - knots[-1]),
                     np.interp(x, knots, image))
    targets = scale * layer_totals(truth, EDGES)
    mapped = layered_map(x, scale, EDGES, targets)
    assert mapped is not None
    np.testing.assert_allclose(scale * layer_totals(mapped, EDGES), targets, rtol=1e-7,
                               atol=1e-6)
    order = np.argsort(x)
    assert np.all(np.diff(mapped[order]) >= -1e-9)


def test_every_layer_alike_is_plain_scaling():
    x = _costs(1)
    mapped = layered_map(x, 1.0, EDGES, layer_totals(1.3 * x, EDGES))
    np.testing.assert_allclose(mapped, 1.3 * x, rtol=1e-7)


def test_unreachable_targets_give_none():
    x = _costs(2, 50)
    too_much = layer_totals(x, EDGES)
    too_much[-2] = (EDGES[-1] - EDGES[-2]) * 51  # more claimants crossing than exist
    assert layered_map(x, 1.0, EDGES, too_much) is None


def test_edges_are_sorted_positive_and_finite():
    np.testing.assert_array_equal(layer_edges([5.0, np.inf, 0.0], [1.0, 5.0]), [1.0, 5.0])


@pytest.mark.slow
def test_completed_year_payouts_close_to_the_complete_data():
    """L city at scale 0.2 as of 2022-01-31: 2021's payouts under its plan, from the
    completed cells (each claimant row standing for the year's claimant factor of them),
    within 2.5 % of those of the complete data (+1.8 % on this seed; over seeds 31-42 from
    -2.9 % to +4.6 %, mean -0.8 %); read as known they fall several per cent short."""
    path = builtin_data(scale=0.2)
    full = load_data(path)
    ds = load_data(path, DataOptions(as_of=datetime.date(2022, 1, 31)))
    done = developed(ds)
    assert all(note["layered"] for note in done.cells.completion["layered"])
    plan, market = full.scheme.plan(2021), full.scheme.market(2021)
    truth = year_result(full.cells, 2021, plan, market).payouts
    assert year_result(done.cells, 2021, plan, market).payouts == pytest.approx(truth,
                                                                                 rel=0.025)
    assert year_result(ds.cells, 2021, plan, market).payouts < 0.97 * truth
