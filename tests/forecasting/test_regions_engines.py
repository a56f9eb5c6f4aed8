"""Several cities as one partitioned data set; pandas, DuckDB and Spark give identical cells."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.cohorts import CohortSpec
from forecasting.dataset import load_data
from forecasting.engine_duckdb import cells_from_parquet
from forecasting.engine_spark import cells_from_spark
from pipelines.regions import write_regions

SPEC = CohortSpec(keys=("sex", "residence", "special_group", "region"))


@pytest.fixture(scope="module")
def regional(tmp_path_factory):
    return write_regions(tmp_path_factory.mktemp("regions") / "data", regions=3, seed=7,
                         scale=0.003)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_partitioned_layout_and_region_cohorts(regional):
    assert (regional / "members" / "year=2021" / "region=R03" / "part-0.parquet").exists()
    ds = load_data(regional, engine="pandas")
    assert ds.cells.spec.keys[-1] == "region"
    assert sorted(ds.cells.table["region"].unique()) == ["R01", "R02", "R03"]


def test_three_engines_identical(regional):
    pandas_cells = load_data(regional, SPEC, engine="pandas").cells
    args = (regional / "members", regional / "claims", SPEC, 0.0, [2019, 2020, 2021])
    duck = cells_from_parquet(*args)
    spark = cells_from_spark(*args, master="local[2]")
    for other in (duck, spark):
        pd.testing.assert_frame_equal(other.table, pandas_cells.table, check_exact=False,
                                      rtol=1e-10)
        pd.testing.assert_frame_equal(_sorted(other.claimants), _sorted(pandas_cells.claimants),
                                      check_exact=False, rtol=1e-10)


def test_spark_engine_refuses_damaged_data_like_the_others(regional, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    data = tmp_path / "bad"
    shutil.copytree(regional, data)
    part = data / "members" / "year=2020" / "region=R02" / "part-0.parquet"
    table = pq.read_table(part).to_pandas()
    table.loc[3, "exposure"] = 2.0
    table.to_parquet(part, index=False)
    from forecasting.errors import InputError
    for engine in ("spark", "duckdb", "pandas"):
        with pytest.raises(InputError, match="column 'exposure'"):
            load_data(data, engine=engine)


def test_spark_summary_mode_equals_duckdb_summary_mode(regional):
    args = (regional / "members", regional / "claims", SPEC, 0.0, [2019, 2020, 2021])
    duck = cells_from_parquet(*args, summary=True)
    spark = cells_from_spark(*args, master="local[2]", summary=True)
    pd.testing.assert_frame_equal(spark.table, duck.table, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(_sorted(spark.claimants), _sorted(duck.claimants),
                                  check_exact=False, rtol=1e-10)


def test_member_year_in_two_regions_is_a_duplicate(regional, tmp_path):
    """Ids unique within each file but repeated across two region files: found by every engine."""
    import shutil

    import pyarrow.parquet as pq

    from forecasting.errors import InputError

    data = tmp_path / "dup"
    shutil.copytree(regional, data)
    a = data / "members" / "year=2021" / "region=R01" / "part-0.parquet"
    b = data / "members" / "year=2021" / "region=R02" / "part-0.parquet"
    first = pq.read_table(a).to_pandas()
    other = pq.read_table(b).to_pandas()
    other.loc[0, "member_id"] = first.loc[5, "member_id"]
    other.sort_values("member_id").to_parquet(b, index=False)
    for engine in ("duckdb", "spark"):
        with pytest.raises(InputError, match="one row per member-year"):
            load_data(data, engine=engine)
