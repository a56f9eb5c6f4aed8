"""Enrollment projection: ageing conserves heads, the trend scales the total."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.enrollment import insured_trend, project_enrollment


@pytest.fixture(scope="module")
def cells(small_city):
    return aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))


def test_total_follows_log_linear_trend(cells):
    table = cells.table[cells.table["year"] <= 2021]
    proj = project_enrollment(table, cells.spec, 2022)
    totals = table.groupby("year")["insured"].sum()
    slope = np.polyfit([2019, 2020, 2021], np.log(totals.to_numpy(float)), 1)[0]
    assert proj["insured"].sum() == pytest.approx(totals.loc[2021] * np.exp(slope), rel=1e-9)
    assert insured_trend(table) == pytest.approx(slope)


def test_ageing_moves_a_fifth_of_each_band(cells):
    """With a flat trend (one year of data) the head count is kept; the mix ages a year."""
    one = cells.table[cells.table["year"] == 2021]
    proj = project_enrollment(one, cells.spec, 2022)
    assert proj["insured"].sum() == pytest.approx(one["insured"].sum())
    before = one.groupby("age_band")["insured"].sum()
    after = proj.groupby("age_band")["insured"].sum()
    # births refill band 0 with what it passed on; the total is then rescaled
    rescale = before.sum() / (before.sum() + 0.2 * before.loc[0])
    assert after.loc[50] == pytest.approx(rescale * (0.8 * before.loc[50] + 0.2 * before.loc[45]))
    assert after.loc[85] == pytest.approx(rescale * (before.loc[85] + 0.2 * before.loc[80]))


def test_forecast_year_must_follow_data(cells):
    with pytest.raises(ValueError, match="must come after"):
        project_enrollment(cells.table, cells.spec, 2021)


def test_projection_close_to_simulated_2022(cells):
    """The simulator's 2022 insured count is a genuine draw: projection within 2 %."""
    proj = project_enrollment(cells.table[cells.table["year"] <= 2021], cells.spec, 2022)
    actual = cells.table[cells.table["year"] == 2022]
    assert proj["insured"].sum() == pytest.approx(actual["insured"].sum(), rel=0.02)
    merged = proj.merge(actual, on=cells.spec.columns, suffixes=("", "_a"))
    by_band = merged.groupby("age_band")[["insured", "insured_a"]].sum()
    assert np.abs(by_band["insured"] / by_band["insured_a"] - 1).median() < 0.06
    assert isinstance(proj, pd.DataFrame)
