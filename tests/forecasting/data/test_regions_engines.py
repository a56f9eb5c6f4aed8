"""Several cities as one partitioned data set; pandas, DuckDB and Spark give identical cells."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from forecasting.data.cohorts import CohortSpec
from forecasting.data.dataset import fingerprint, load_data
from forecasting.data.engines.duckdb_engine import (
    values_in_range,
    year_partitions,
)
from forecasting.data.io import table_files
from forecasting.data.options import DataOptions
from forecasting.errors import InputError
from pipelines.workflows.regions import write_regions
from tests.engines import engine_cells

SPEC = CohortSpec(keys=("sex", "residence", "special_group", "region"))


@pytest.fixture(scope="module")
def regional(tmp_path_factory):
    """Three cities partitioned by year and region, in a folder whose name has quotes, a
    semicolon, Chinese and glob characters: every engine reads paths as paths."""
    name = "d'); COPY (SELECT 42) TO 'pwned.csv'; --数据 [1]*?"
    return write_regions(tmp_path_factory.mktemp("regions") / name, regions=3, seed=7,
                         scale=0.003)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_partitioned_layout_and_region_cohorts(regional):
    assert (regional / "members" / "year=2021" / "region=R03" / "part-0.parquet").exists()
    ds = load_data(regional, DataOptions(engine="pandas"))
    assert ds.cells.spec.keys[-1] == "region"
    assert sorted(ds.cells.table["region"].unique()) == ["R01", "R02", "R03"]


def test_three_engines_identical(regional):
    pandas_cells = load_data(regional, DataOptions(spec=SPEC, engine="pandas")).cells
    args = (regional / "members", regional / "claims", SPEC, 0.0)
    duck = engine_cells("duckdb", *args)
    spark = engine_cells("spark", *args)
    for other in (duck, spark):
        pd.testing.assert_frame_equal(other.table, pandas_cells.table, check_exact=False,
                                      rtol=1e-10)
        pd.testing.assert_frame_equal(_sorted(other.claimants), _sorted(pandas_cells.claimants),
                                      check_exact=False, rtol=1e-10)


def test_every_engine_reads_the_files_arrow_reads(regional, tmp_path):
    """A partition stored as Hive stores it (a data file without a suffix), beside what
    writers leave (_SUCCESS, a .crc checksum, a _temporary folder): the engines and the
    fingerprint take the data files Arrow takes, and nothing else."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    part = data / "members" / "year=2020" / "region=R02"
    (part / "part-0.parquet").rename(part / "000000_0")
    (data / "members" / "_SUCCESS").write_text("", encoding="utf-8")
    (part / ".000000_0.crc").write_bytes(b"not parquet")
    (data / "claims" / "_temporary" / "0").mkdir(parents=True)
    (data / "claims" / "_temporary" / "0" / "part-9.parquet").write_bytes(b"not parquet")
    _engines_and_fingerprint_read_what_arrow_reads(regional, data, part / "000000_0")


def test_a_linked_partition_is_read_by_every_engine_and_the_fingerprint(regional, tmp_path):
    """A partition folder that is a symbolic link to where it is stored: Arrow (the pandas
    engine) follows it, so DuckDB and the fingerprint must too (or DuckDB drops its rows
    and a change to its file leaves a stale cache)."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    shutil.copytree(regional, data)
    part = data / "members" / "year=2020" / "region=R02"
    elsewhere.mkdir()
    part.rename(elsewhere / "region=R02")
    part.symlink_to(elsewhere / "region=R02", target_is_directory=True)
    assert part / "part-0.parquet" in table_files(data / "members")
    _engines_and_fingerprint_read_what_arrow_reads(regional, data, part / "part-0.parquet")


def _engines_and_fingerprint_read_what_arrow_reads(regional: Path, data: Path, file: Path):
    """`data` (a copy of `regional` stored otherwise) lists the files Arrow reads, gives
    every engine the cells of `regional`, and its fingerprint moves when `file` changes."""
    for table in ("members", "claims"):
        arrow = pads.dataset(data / table, format="parquet", partitioning="hive").files
        assert table_files(data / table) == sorted(Path(f) for f in arrow)
    original = load_data(regional, DataOptions(spec=SPEC, engine="pandas")).cells
    for engine in ("pandas", "duckdb"):
        cells = load_data(data, DataOptions(spec=SPEC, engine=engine)).cells
        pd.testing.assert_frame_equal(cells.table, original.table, check_exact=False,
                                      rtol=1e-10)
    before = fingerprint([data / "members"])
    pq.write_table(pq.read_table(file).slice(1), file)  # a member-year less, in that file
    assert fingerprint([data / "members"]) != before


def test_a_link_back_up_the_tree_is_not_followed_round(tmp_path):
    table = tmp_path / "members"
    (table / "year=2020").mkdir(parents=True)
    pq.write_table(pa.table({"member_id": [1]}), table / "year=2020" / "part-0.parquet")
    (table / "year=2020" / "again").symlink_to(table, target_is_directory=True)
    assert table_files(table) == [table / "year=2020" / "part-0.parquet"]


def test_a_partition_that_cannot_be_listed_is_an_error(tmp_path, monkeypatch):
    """Arrow refuses a folder it cannot list; DuckDB and the fingerprint must not skip it
    (its rows silently missing). Permissions are mimicked: the tests may run as root."""
    table = tmp_path / "members"
    for year in (2020, 2021):
        (table / f"year={year}").mkdir(parents=True)
        pq.write_table(pa.table({"member_id": [1]}), table / f"year={year}" / "part-0.parquet")
    scandir, locked = os.scandir, str(table / "year=2021")

    def denied(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(InputError, match=r"year=2021: cannot be read \(Permission denied\)"):
        table_files(table)
    with pytest.raises(InputError, match="year=2021: cannot be read"):
        fingerprint([table])


def _copy_and_edit(regional: Path, tmp_path: Path, year: int, region: str, edit,
                   table: str = "members") -> Path:
    """A copy of the regional data with one partition file rewritten by `edit(frame)`."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    part = data / table / f"year={year}" / f"region={region}" / "part-0.parquet"
    frame = pq.read_table(part).to_pandas()
    edit(frame)
    frame.sort_values("member_id").to_parquet(part, index=False)
    return data


def test_spark_engine_refuses_damaged_data_like_the_others(regional, tmp_path):
    def edit(frame):
        frame.loc[3, "exposure"] = 2.0
    data = _copy_and_edit(regional, tmp_path, 2020, "R02", edit)
    # the message names the file and the row within it, not the row in the whole data set
    where = r"year=2020/region=R02/part-0\.parquet: column 'exposure', row 4: expected"
    for engine in ("spark", "duckdb", "pandas"):
        with pytest.raises(InputError, match=where):
            load_data(data, DataOptions(engine=engine))


@pytest.mark.parametrize("costs", [[1e300], [6e8, 6e8]])
def test_absurd_costs_refused_alike_on_every_engine(regional, tmp_path, costs):
    """A claim above the ceiling, or claims of one member-year summing above it: the same
    one line from Spark, DuckDB (partition by partition) and pandas."""
    def edit(frame):
        for i, cost in enumerate(costs):
            frame.loc[2 + i, ["member_id", "eligible_cost"]] = [frame.loc[2, "member_id"], cost]
    data = _copy_and_edit(regional, tmp_path, 2020, "R02", edit, table="claims")
    messages = set()
    for engine in ("spark", "duckdb", "pandas"):
        with pytest.raises(InputError, match=r"region=R02/part-0\.parquet: column") as err:
            load_data(data, DataOptions(engine=engine))
        messages.add(str(err.value))
    assert len(messages) == 1


def test_spark_summary_mode_equals_duckdb_summary_mode(regional):
    args = (regional / "members", regional / "claims", SPEC, 0.0)
    duck = engine_cells("duckdb", *args, severity_summary=True)
    spark = engine_cells("spark", *args, severity_summary=True)
    pd.testing.assert_frame_equal(spark.table, duck.table, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(_sorted(spark.claimants), _sorted(duck.claimants),
                                  check_exact=False, rtol=1e-10)


def test_member_year_in_two_regions_is_a_duplicate(regional, tmp_path):
    """Ids unique within each file but repeated across two region files: found by every engine."""
    first = pq.read_table(regional / "members" / "year=2021" / "region=R01" / "part-0.parquet")
    taken = first.column("member_id")[5].as_py()

    def edit(frame):
        frame.loc[0, "member_id"] = taken
    data = _copy_and_edit(regional, tmp_path, 2021, "R02", edit)
    where = r"year=2021/region=R02/part-0\.parquet: columns 'member_id','year', row 1: "
    for engine in ("duckdb", "spark"):
        with pytest.raises(InputError, match=where + "expected one row per member-year"):
            load_data(data, DataOptions(engine=engine))


def test_claim_filed_under_another_region_still_joins(regional, tmp_path):
    """Claims partitioned unlike members: the part-by-part join misses the member, so the
    DuckDB engine joins everything at once and still agrees with pandas."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    src, dst = (data / "claims" / "year=2021" / f"region={r}" / "part-0.parquet"
                for r in ("R01", "R02"))
    a, b = pq.read_table(src).to_pandas(), pq.read_table(dst).to_pandas()
    pd.concat([b, a.iloc[[0]]], ignore_index=True).to_parquet(dst, index=False)
    a.iloc[1:].to_parquet(src, index=False)
    assert year_partitions(data / "members", data / "claims")
    args = (data / "members", data / "claims", SPEC, 0.0)
    duck = engine_cells("duckdb", *args)
    ref = load_data(data, DataOptions(spec=SPEC, engine="pandas")).cells
    pd.testing.assert_frame_equal(duck.table, ref.table, check_exact=False, rtol=1e-10)
    assert len(duck.claimants) == len(ref.claimants)


def _partition_path_equals(data: Path, ref, monkeypatch) -> None:
    """DuckDB cells of `data` through the partition path (the fallback forbidden) equal
    the reference cells."""
    def no_fallback(*args, **kwargs):
        raise AssertionError("the partition-by-partition join fell back")
    monkeypatch.setattr("forecasting.data.engines.duckdb_engine.cells_sql", no_fallback)
    duck = engine_cells("duckdb", data / "members", data / "claims", SPEC, 0.0)
    pd.testing.assert_frame_equal(duck.table, ref.table, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(_sorted(duck.claimants), _sorted(ref.claimants),
                                  check_exact=False, rtol=1e-10)


def test_row_by_row_join_holds_however_a_partition_is_stored(regional, tmp_path, monkeypatch):
    """Two files, small row groups, member ids and claims out of order: each member row
    still gets its own annual cost (no fallback to the one big join allowed)."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    part = data / "members" / "year=2020" / "region=R02"
    frame = pq.ParquetFile(part / "part-0.parquet").read().to_pandas()
    frame = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    (part / "part-0.parquet").unlink()
    half = len(frame) // 2
    for name, rows in (("part-0", frame.iloc[:half]), ("part-1", frame.iloc[half:])):
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=False),
                       part / f"{name}.parquet", row_group_size=300)

    claims = data / "claims" / "year=2020" / "region=R02" / "part-0.parquet"
    shuffled = pq.ParquetFile(claims).read().to_pandas().sample(frac=1.0, random_state=4)
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), claims)

    ref = load_data(data, DataOptions(spec=SPEC, engine="pandas")).cells
    _partition_path_equals(data, ref, monkeypatch)


@pytest.mark.parametrize(("column", "value"), [("exposure", float("nan")), ("exposure", None),
                                               ("exposure", 1.5), ("age", 130)])
def test_damaged_partition_named_with_file_and_row(regional, tmp_path, column, value):
    """Values the Parquet statistics miss (a NaN) or show (a null, out of range) are caught
    on the partition-by-partition path, and the message names the file and the row in it."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    part = data / "members" / "year=2019" / "region=R03" / "part-0.parquet"
    table = pq.ParquetFile(part).read()
    values = table.column(column).to_numpy().astype("float64")
    values[6] = np.nan if value is None else value
    # a real NaN stays a NaN only from numpy; from pandas it would become a null
    new = pa.array(values, mask=np.isnan(values) if value is None else None)
    new = new.cast(table.schema.field(column).type, safe=False) if column == "age" else new
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, new), part)
    assert values_in_range(part, "age", 2019) == (value is not None and value != value)
    with pytest.raises(InputError, match=rf"region=R03/part-0\.parquet: column '{column}', "
                                         r"row 7: expected"):
        load_data(data, DataOptions(engine="duckdb"))


def test_birth_year_on_the_partition_path(regional, tmp_path, monkeypatch):
    """Members with birth_year instead of age: ages are derived the same way on the
    partition-by-partition path as in the pandas engine."""
    data = tmp_path / "data"
    shutil.copytree(regional, data)
    for part in (data / "members").rglob("*.parquet"):
        year = int(part.parent.parent.name.split("=")[1])
        frame = pq.ParquetFile(part).read().to_pandas()
        frame["birth_year"] = year - frame.pop("age")
        frame.to_parquet(part, index=False)

    ref = load_data(regional, DataOptions(spec=SPEC, engine="pandas")).cells
    _partition_path_equals(data, ref, monkeypatch)
