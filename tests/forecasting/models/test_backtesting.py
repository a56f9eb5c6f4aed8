"""Backtest metrics: Gini by hand, perfect ranking, and the backtest on a small city."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.backtesting import METRICS, backtest, gini
from forecasting.models.claims import ClaimsModel


def test_gini_extremes():
    exposure = np.ones(4)
    claimants = np.array([0.0, 0.0, 0.0, 4.0])
    assert gini(np.array([1, 2, 3, 4]), exposure, claimants) == pytest.approx(0.75)
    assert gini(np.array([4, 3, 2, 1]), exposure, claimants) == pytest.approx(-0.75)
    assert gini(np.ones(4), exposure, np.ones(4)) == pytest.approx(0.0)


def test_backtest_on_small_city(small_city):
    cells = aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))
    table = backtest(cells, small_city.scheme, lambda: ClaimsModel())
    assert list(table["year"]) == [2020, 2021, 2022]
    assert list(table.columns) == ["year", "claimants", *METRICS]
    # frequency rises with age: the model ranks cells far better than chance
    assert (table["gini"] > 0.2).all()
    # a 1 % city is noisy, but totals are forecast within 15 %
    assert table["claimants_error"].abs().max() < 0.15
    assert table["payout_error"].abs().max() < 0.5
