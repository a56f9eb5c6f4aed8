"""The bucketed severity summary prices layers like the full data (within 0.5 %)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.data.summary import SeveritySummary, summary_sql
from tests.engines import engine_cells

BANDS = [(0, 15_000), (15_000, 50_000), (50_000, 100_000), (100_000, 200_000),
         (200_000, 300_000), (7_500, 50_000), (12_345, 98_765)]


@pytest.fixture(scope="module")
def claimants(small_city):
    return aggregate(small_city.members,
                     annual_costs(small_city.members, small_city.claims)).claimants


def _exact(cost: np.ndarray, a: float, b: float) -> float:
    return float((np.minimum(cost, b) - np.minimum(cost, a)).mean())


@pytest.mark.parametrize(("a", "b"), BANDS)
def test_layers_from_summary_agree_with_full_data(claimants, a, b):
    summary = SeveritySummary.from_claimants(claimants, ["year", "age_band"])
    cost = claimants["cost"].to_numpy()
    assert summary.layer(a, b) == pytest.approx(_exact(cost, a, b), rel=0.005)
    # and per cohort, where the data are thin
    rows = (summary.table["year"] == 2021) & (summary.table["age_band"] == 55)
    sel = (claimants["year"] == 2021) & (claimants["age_band"] == 55)
    assert summary.layer(a, b, rows) == pytest.approx(
        _exact(cost[sel.to_numpy()], a, b), rel=0.005, abs=1e-6)


def test_exact_at_bucket_edges(claimants):
    summary = SeveritySummary.from_claimants(claimants, ["year"])
    edge = float(summary.edge(np.array([800]))[0])  # 10**4 = 10,000 CNY
    assert edge == pytest.approx(10_000)
    assert summary.lev(edge) == pytest.approx(
        np.minimum(claimants["cost"], edge).mean(), rel=1e-12)


def test_sql_summary_equals_pandas(claimants):
    con = duckdb.connect()
    cl = claimants[["year", "age_band", "cost"]]
    con.register("cl", cl)
    sql = con.execute(summary_sql(["year", "age_band"])).df()
    ours = SeveritySummary.from_claimants(claimants, ["year", "age_band"]).table
    keys = ["year", "age_band", "bucket"]
    sql = sql.sort_values(keys).reset_index(drop=True)
    ours = ours.sort_values(keys).reset_index(drop=True)
    np.testing.assert_array_equal(sql[keys].to_numpy(), ours[keys].to_numpy())
    np.testing.assert_array_equal(sql["n"], ours["n"])
    np.testing.assert_allclose(sql["total"], ours["total"], rtol=1e-12)
    assert isinstance(sql, pd.DataFrame)


def test_engine_summary_mode_matches_rows_mode(small_city, small_dir):
    """Claimants sent as a bucket summary: cell counts and sums exact, accounts within 0.5 %."""
    from forecasting.data.cohorts import CohortSpec
    from forecasting.scheme.accounts import history

    args = (small_dir / "members.parquet", small_dir / "claims.parquet", CohortSpec(), 0.0)
    rows, summ = engine_cells("duckdb", *args), engine_cells("duckdb", *args, severity_summary=True)
    pd.testing.assert_frame_equal(rows.table, summ.table, check_exact=False, rtol=1e-9)
    assert len(summ.claimants) == len(rows.claimants)
    a, b = history(rows, small_city.scheme), history(summ, small_city.scheme)
    np.testing.assert_allclose(b["payouts"], a["payouts"], rtol=0.005)
    np.testing.assert_array_equal(b["insured"], a["insured"])


def test_every_engine_gives_the_same_summarised_claimants(small_dir):
    """pandas summarises rows it holds (numpy buckets); DuckDB sends only the summary (SQL
    buckets): the models get identical cells and claimant rows either way."""
    from forecasting.data.dataset import load_data
    from forecasting.data.options import DataOptions
    duck = load_data(small_dir, DataOptions(engine="duckdb", severity_summary=True)).cells
    pand = load_data(small_dir, DataOptions(engine="pandas", severity_summary=True)).cells
    pd.testing.assert_frame_equal(duck.table, pand.table, check_exact=False, rtol=1e-10)
    order = list(pand.claimants.columns)
    pd.testing.assert_frame_equal(
        duck.claimants.sort_values(order).reset_index(drop=True),
        pand.claimants.sort_values(order).reset_index(drop=True), check_exact=False,
        rtol=1e-10)
    full = load_data(small_dir, DataOptions(engine="pandas")).cells
    assert len(pand.claimants) == len(full.claimants)
    assert pand.claimants["cost"].sum() == pytest.approx(full.claimants["cost"].sum(),
                                                         rel=1e-12)
