"""Cells from Parquet with DuckDB: the shared SQL (forecasting.aggregation) runs in the
database, in parallel and out of core, without loading member rows into Python. A
Parquet source is a file or a hive-partitioned folder (members/year=2021/region=R07/...)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from forecasting.aggregation import NeedsDetail, aggregate_sql, claims_view, members_view
from forecasting.cells import Cells
from forecasting.cohorts import CohortSpec
from forecasting.contract import age_column

NUMERIC = ("int", "float", "double", "decimal")
# member-years above which duplicates are counted in the database instead of a bitmap
BITMAP_ROWS = 50_000_000


def dataset(path: Path) -> pads.Dataset:
    """A Parquet file or hive-partitioned folder as an Arrow dataset."""
    return pads.dataset(path, format="parquet", partitioning="hive")


def duckdb_source(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        return f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{path}')"


def types_ok(schema: pa.Schema, expected: dict[str, tuple[str, ...]]) -> None:
    """Parquet types the SQL checks rely on; anything else goes to the pandas engine."""
    for name, kinds in expected.items():
        if name not in schema.names:
            raise NeedsDetail(name)
        if not any(k in str(schema.field(name).type) for k in kinds):
            raise NeedsDetail(name)


def check_schemas(members_path: Path, claims_path: Path) -> tuple[str, bool]:
    """(age column, has region) after checking both sources' column types."""
    schema = dataset(members_path).schema
    age_col = age_column(schema.names)
    types_ok(schema, {"member_id": ("int",), "year": ("int",), age_col: ("int",),
                      "sex": ("string",), "residence": ("string",),
                      "special_group": ("bool",), "exposure": NUMERIC})
    types_ok(dataset(claims_path).schema,
             {"member_id": ("int",), "year": ("int",), "eligible_cost": NUMERIC})
    return age_col, "region" in schema.names


def _no_duplicates(con: duckdb.DuckDBPyConnection, members_path: Path) -> None:
    """One row per member-year. Up to BITMAP_ROWS: files sorted by (year, member) pass in one
    comparison, else a count per key in a bitmap-sized array; beyond, a database count."""
    ds = dataset(members_path)
    if ds.count_rows() > BITMAP_ROWS:
        dup = con.execute("SELECT COUNT(*) - COUNT(DISTINCT (member_id, year)) FROM m").fetchone()
        if dup[0]:
            raise NeedsDetail("duplicate member-years")
        return
    ids = ds.to_table(columns=["member_id", "year"])
    member = ids.column("member_id").to_numpy()
    year = ids.column("year").to_numpy().astype("int64")
    lo, span = int(member.min()), int(member.max() - member.min() + 1)
    key = (year - year.min()) * span + (member - lo)
    if (key[1:] > key[:-1]).all():
        return
    if key.max() > 16 * len(key) + 1_000_000:
        raise NeedsDetail("ids too sparse for a bitmap: let the pandas engine sort them")
    if np.bincount(key).max() > 1:
        raise NeedsDetail("duplicate member-years")


def cells_from_parquet(
    members_path: Path, claims_path: Path, spec: CohortSpec, reported_above: float,
    years_with_plan: list[int], memory_limit: str | None = None,
) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off."""
    age_col, has_region = check_schemas(members_path, claims_path)
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    # plain views (not TEMP) so that the duplicate check's cursor sees them too
    members = members_view(duckdb_source(members_path), age_col, has_region)
    con.execute(f"CREATE VIEW m AS {members}")
    con.execute(f"CREATE VIEW c AS {claims_view(duckdb_source(claims_path))}")
    # the duplicate check reads ids outside the database: run it beside the queries
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_no_duplicates, con.cursor(), members_path)
        cells = aggregate_sql(lambda sql: con.execute(sql).df(), spec, reported_above,
                              years_with_plan, has_region)
        duplicates.result()
    return cells
