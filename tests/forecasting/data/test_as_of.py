"""The data as known on a date: claims settled by then, and what that does to the latest
year (the simulator settles with realistic lags)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.data.dataset import load_data
from forecasting.data.options import DataOptions
from forecasting.errors import EngineError
from pipelines.cli import app

runner = CliRunner()
AS_OF = datetime.date(2022, 1, 31)


def test_settlement_lags_are_realistic(small_city):
    c = small_city.claims
    lag = (pd.to_datetime(c["settlement_date"]) - pd.to_datetime(c["service_date"])).dt.days
    assert (lag >= 0).all()
    assert 0.6 < (lag <= 31).mean() < 0.95              # most within a month
    assert (lag > 120).mean() > 0.02                    # a tail of months
    big = c["eligible_cost"] > 50_000
    assert lag[big].mean() > 1.5 * lag[~big].mean()     # large bills settle later


def test_as_of_keeps_what_was_settled_by_then(small_city, small_dir):
    """Cells' cost per year equal the claims settled by the date, summed independently;
    the latest complete year looks short, the earlier ones do not."""
    known = load_data(small_dir, DataOptions(as_of=AS_OF)).cells.table
    full = load_data(small_dir).cells.table
    c = small_city.claims
    settled = c[pd.to_datetime(c["settlement_date"]) <= pd.Timestamp(AS_OF)]
    expected = settled[settled["year"] <= 2021].groupby("year")["eligible_cost"].sum()
    got = known.groupby("year")["cost"].sum()
    np.testing.assert_allclose(got.to_numpy(), expected.reindex(got.index).to_numpy(),
                               rtol=1e-9)
    by_year = known.groupby("year")["cost"].sum() / full.groupby("year")["cost"].sum()
    assert by_year[2021] < 0.97 and by_year[2019] > 0.995
    assert 2022 not in got.index  # the year under way is forecast, not fitted


def test_as_of_on_the_command_line(small_dir):
    result = runner.invoke(app, ["history", "--data", str(small_dir), "--as-of",
                                 "2022-01-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["history", "--data", str(small_dir), "--as-of", "31/01/2022"])
    assert bad.exit_code == 2 and "--as-of expected a date like 2022-01-31" in bad.stderr
    with pytest.raises(EngineError, match="as-of view"):
        load_data(small_dir, DataOptions(as_of=AS_OF, engine="duckdb"))
