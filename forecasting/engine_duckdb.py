"""Cells from Parquet with DuckDB: the shared SQL (forecasting.aggregation) runs in the
database, in parallel and out of core, without loading member rows into Python. A
Parquet source is a file or a hive-partitioned folder (members/year=2021/region=R07/...)."""

from __future__ import annotations

import itertools
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


def _unique(member: np.ndarray, year: np.ndarray) -> bool:
    """No (member, year) twice: sorted keys pass in one comparison, else a bitmap count,
    else a sort."""
    if len(member) < 2:
        return True
    lo, span = int(member.min()), int(member.max() - member.min() + 1)
    key = (year - year.min()) * span + (member - lo)
    if (key[1:] > key[:-1]).all():
        return True
    if key.max() <= 16 * len(key) + 1_000_000:
        return bool(np.bincount(key).max() <= 1)
    return len(np.unique(key)) == len(key)


def _no_duplicates(con: duckdb.DuckDBPyConnection, members_path: Path) -> None:
    """One row per member-year, file by file (a year partition in the path counts), then
    across files through their id ranges; overlapping ranges go to a database count."""
    ds = dataset(members_path)
    ranges: dict[int, list[tuple[int, int]]] = {}
    for frag in ds.get_fragments():
        keys = pads.get_partition_keys(frag.partition_expression)
        cols = ["member_id"] if "year" in keys else ["member_id", "year"]
        table = frag.to_table(columns=cols)
        member = table.column("member_id").to_numpy()
        year = (np.full(len(member), int(keys["year"])) if "year" in keys
                else table.column("year").to_numpy().astype("int64"))
        if not _unique(member, year):
            raise NeedsDetail("duplicate member-years")
        for y in np.unique(year):
            ids = member[year == y]
            ranges.setdefault(int(y), []).append((int(ids.min()), int(ids.max())))
    for spans in ranges.values():
        spans.sort()
        if any(b[0] <= a[1] for a, b in itertools.pairwise(spans)):
            dup = con.execute(
                "SELECT COUNT(*) - COUNT(DISTINCT (member_id, year)) FROM m").fetchone()
            if dup[0]:
                raise NeedsDetail("duplicate member-years")
            return


def cells_from_parquet(
    members_path: Path, claims_path: Path, spec: CohortSpec, reported_above: float,
    years_with_plan: list[int], memory_limit: str | None = None, summary: bool = False,
) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off."""
    age_col, has_region = check_schemas(members_path, claims_path)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
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
                              years_with_plan, has_region, summary, con.execute)
        duplicates.result()
    return cells
