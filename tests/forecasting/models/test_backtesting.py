"""Backtest metrics: Gini by hand, perfect ranking, and the backtest on a small city."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    assert list(table.columns) == ["year", "claimants", "as_reported", *METRICS]
    assert not table["as_reported"].any()  # complete data
    # frequency rises with age: the model ranks cells far better than chance
    assert (table["gini"] > 0.2).all()
    # a 1 % city is noisy, but totals are forecast within 15 %
    assert table["claimants_error"].abs().max() < 0.15
    assert table["payout_error"].abs().max() < 0.5


def test_the_score_leaves_out_thin_years_and_undeveloped_as_of_origins():
    """The median of |metric| over the years with enough held-out claimants whose training
    data were complete or completed; the others are named; with none left, the years with
    enough claimants count."""
    import pandas as pd

    from forecasting.models.backtesting import summarise

    table = pd.DataFrame({"year": [2018, 2019, 2020, 2021],
                          "claimants": [500, 10, 500, 500],
                          "as_reported": [True, False, False, False],
                          "m": [-0.6, 0.5, 0.02, -0.04]})
    score, out = summarise(table, "m", min_claimants=30)
    assert score == pytest.approx(0.03) and out == [2018, 2019]
    only = table.assign(as_reported=[True, False, True, True])
    score, out = summarise(only, "m", min_claimants=30)
    assert score == pytest.approx(0.04) and out == [2019]
    score, out = summarise(table.drop(columns="as_reported"), "m", min_claimants=30)
    assert score == pytest.approx(0.04) and out == [2019]


def test_as_of_backtest_marks_origins_trained_as_reported(small_dir):
    """As of 2022-01-31, origin 2020 trains on 2019 alone as of 2020-01-31 (nothing to
    develop from), origin 2021 on 2019-2020 completed."""
    import datetime

    from forecasting.data.dataset import load_data
    from forecasting.data.options import DataOptions
    from forecasting.models.completion import as_known, developed

    ds = developed(load_data(small_dir, DataOptions(as_of=datetime.date(2022, 1, 31))))
    table = backtest(ds.cells, ds.scheme, ClaimsModel, known=as_known(ds))
    assert table.set_index("year")["as_reported"].to_dict() == {2020: True, 2021: False}


def test_candidates_sharing_cells_get_what_fresh_cells_give(small_city):
    """A training asks the same cells for the same windows, enrolment and claimants by
    cohort once per candidate, and keeps them with the cells (`Cells.kept`): a candidate
    backtested after others on the same cells scores exactly as on cells of its own."""
    def fresh():
        return aggregate(small_city.members, annual_costs(small_city.members,
                                                          small_city.claims))

    shared_cells = fresh()
    models = [lambda: ClaimsModel(frequency="gbm"), lambda: ClaimsModel()]
    for make in models:  # the first candidate fills what the cells keep
        backtest(shared_cells, small_city.scheme, make)
    assert shared_cells.until(2020) is shared_cells.until(2020)
    again = backtest(shared_cells, small_city.scheme, models[1])
    alone = backtest(fresh(), small_city.scheme, models[1])
    assert again.equals(alone)
    # the windows kept are the windows made anew
    window = fresh().until(2020)
    assert shared_cells.until(2020).table.equals(window.table)
    assert shared_cells.until(2020).claimants.equals(window.claimants)


def test_forecasts_from_the_same_cells_do_not_share_their_cohorts(small_city):
    """The enrolment kept with the cells is copied into each forecast: a second model's
    forecast must not rewrite the first one's claimants and frequencies."""
    cells = aggregate(small_city.members, annual_costs(small_city.members,
                                                       small_city.claims)).until(2021)
    first = ClaimsModel().fit(cells).forecast(2022)
    before = first.cohorts.copy()
    ClaimsModel(frequency="gbm").fit(cells).forecast(2022)
    pd.testing.assert_frame_equal(first.cohorts, before)
