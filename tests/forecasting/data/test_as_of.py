"""The data as known on a date: claims settled by then, and what that does to the latest
year (the simulator settles with realistic lags)."""

from __future__ import annotations

import datetime
import json

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


def test_as_of_before_any_year_ended_is_one_line(tiny_csv_dir):
    """An --as-of before the first year of the data ended leaves nothing to read: one
    line naming the first date that would do, exit 2 (not a numpy traceback)."""
    result = runner.invoke(app, ["history", "--data", str(tiny_csv_dir), "--as-of",
                                 "2019-06-30"])
    assert result.exit_code == 2, result.output
    assert "--as-of expected a date by which a year of the data had ended " \
           "(2019-12-31 or later); got 2019-06-30" in result.stderr


def test_settled_before_the_care_is_refused(tiny_csv_dir):
    """A claim settled before its service date would fall outside every triangle (left
    out of the completion but kept in the cells): an error naming the row."""
    path = tiny_csv_dir / "claims.csv"
    claims = pd.read_csv(path)
    claims.loc[3, "settlement_date"] = "2015-03-01"
    claims.to_csv(path, index=False)
    result = runner.invoke(app, ["history", "--data", str(tiny_csv_dir), "--as-of",
                                 "2022-01-31"])
    assert result.exit_code == 2, result.output
    assert ("column 'settlement_date', row 4: expected a settlement date on or after the "
            "service date; got 2015-03-01") in result.stderr


def test_one_service_year_is_said_to_be_as_settled(tiny_csv_dir):
    """As of a date with one ended year there is no development to learn: history shows
    that year as settled by then and says so (it printed it like a complete year)."""
    result = runner.invoke(app, ["history", "--data", str(tiny_csv_dir), "--as-of",
                                 "2020-01-31", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "hold one service year (2019): nothing to learn its development from" \
        in result.stderr


def test_history_states_the_completed_cost(small_dir):
    result = runner.invoke(app, ["history", "--data", str(small_dir), "--as-of",
                                 "2022-01-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout):
        assert row["cost_completed"] == pytest.approx(
            row["cost_settled"] * row["completion_factor"], rel=1e-9)
        cost = row["cost_completed"]
        assert row["completed_low"] <= cost * (1 + 1e-12)
        assert cost <= row["completed_high"] * (1 + 1e-12)


def test_settled_before_the_care_is_refused_without_as_of_too(tiny_city, tmp_path):
    """The plain data path checks what `--as-of` and `ciplan import` check: a claim settled
    before its service date (or, without one, before its year) is refused with its row on
    every engine, as of a date or not (it was read, and counted, without --as-of)."""
    from forecasting.data.dataset import write_data_dir
    from forecasting.errors import InputError
    from tests.cli import one_line_error

    claims = tiny_city.claims.copy()
    claims.loc[3, "settlement_date"] = datetime.date(2015, 3, 1)
    data = write_data_dir(tmp_path / "parquet", tiny_city.members, claims, tiny_city.scheme)
    said = ("claims.parquet: column 'settlement_date', row 4: expected a settlement date on "
            f"or after the service date; got 2015-03-01 before {claims.loc[3, 'service_date']}")
    for engine in ("auto", "pandas", "duckdb", "spark"):
        with pytest.raises(InputError) as caught:
            load_data(data, DataOptions(engine=engine))
        assert said in str(caught.value), engine
    result = runner.invoke(app, ["history", "--data", str(data)])
    one_line_error(result.exit_code, result.stderr, said)
    # claims dated by their year only: settled before the year began
    by_year = claims.drop(columns="service_date")
    data = write_data_dir(tmp_path / "csv", tiny_city.members, by_year, tiny_city.scheme,
                          fmt="csv")
    with pytest.raises(InputError, match=r"claims\.csv: column 'settlement_date', row 4: "
                       r"expected a settlement date in or after the claim's year; got "
                       r"2015-03-01 before \d{4}-01-01"):
        load_data(data, DataOptions())
