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

from forecasting.aggregation import (
    DUCKDB,
    NeedsDetail,
    cells_from_results,
    cells_sql,
    claims_view,
    members_view,
)
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


def _unique(member: np.ndarray, year: np.ndarray | None = None) -> bool:
    """No (member, year) twice: increasing keys pass in one comparison (files written in id
    order), else a bitmap count, else a sort."""
    if len(member) < 2:
        return True
    if year is None or year.min() == year.max():
        key = member
    else:
        span = int(member.max() - member.min() + 1)
        key = (year - year.min()) * span + (member - member.min())
    if (key[1:] > key[:-1]).all():
        return True
    lo = int(key.min())
    if key.max() - lo <= 16 * len(key) + 1_000_000:
        return bool(np.bincount(key - lo).max() <= 1)
    return len(np.unique(key)) == len(key)


def _years_of(frag: pads.Fragment) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Member ids of a file, their years (None when one year: the partition's or the
    file's only one) and the years present."""
    keys = pads.get_partition_keys(frag.partition_expression)
    if "year" in keys:
        return frag.to_table(columns=["member_id"]).column("member_id").to_numpy(), None, [
            int(keys["year"])]
    table = frag.to_table(columns=["member_id", "year"])
    member = table.column("member_id").to_numpy()
    year = table.column("year").to_numpy().astype("int64")
    if len(year) and year.min() == year.max():
        return member, None, [int(year[0])]
    return member, year, sorted(int(y) for y in np.unique(year))


def _no_duplicates(con: duckdb.DuckDBPyConnection, members_path: Path) -> None:
    """One row per member-year, file by file, then across files through their id ranges;
    overlapping ranges go to a database count."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for frag in dataset(members_path).get_fragments():
        member, year, years = _years_of(frag)
        if not _unique(member, year):
            raise NeedsDetail("duplicate member-years")
        for y in years:
            ids = member if year is None else member[year == y]
            if len(ids):
                ranges.setdefault(y, []).append((int(ids.min()), int(ids.max())))
    for spans in ranges.values():
        spans.sort()
        if any(b[0] <= a[1] for a, b in itertools.pairwise(spans)):
            dup = con.execute(
                "SELECT COUNT(*) - COUNT(DISTINCT (member_id, year)) FROM m").fetchone()
            if dup[0]:
                raise NeedsDetail("duplicate member-years")
            return


def aligned_partitions(members_path: Path, claims_path: Path) -> list[str]:
    """Leaf folders (relative paths) that members and claims both have and nothing else,
    e.g. year=2021/region=R07: claims partitioned like members can be joined part by
    part. Empty when they are not (or are single files)."""
    def leaves(root: Path) -> set[str]:
        if not root.is_dir():
            return set()
        return {str(f.parent.relative_to(root)) for f in root.rglob("*.parquet")}

    found = leaves(Path(members_path))
    return sorted(found) if len(found) > 1 and found == leaves(Path(claims_path)) else []


def _run_parts(con: duckdb.DuckDBPyConnection, sqls: list[str]) -> list[pa.Table]:
    """Run queries on as many cursors as DuckDB has threads, one thread each: small
    per-partition joins whose hash tables stay in cache beat one big parallel join."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    workers = min(threads, len(sqls))
    if workers > 1:
        con.execute("SET threads = 1")

    def one(sql: str) -> pa.Table:
        return con.cursor().sql(sql).to_arrow_table()

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, sqls))
    finally:
        con.execute(f"SET threads = {threads}")


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
    # a plain view (not TEMP) so that the duplicate check's cursor sees it too
    con.execute(f"CREATE VIEW m AS "
                f"{members_view(duckdb_source(members_path), age_col, has_region)}")

    def sql(part: str = "") -> str:
        m, c = (Path(members_path) / part, Path(claims_path) / part) if part else (
            members_path, claims_path)
        return cells_sql(members_view(duckdb_source(m), age_col, has_region),
                         claims_view(duckdb_source(c)), spec, has_region, reported_above, summary,
                         DUCKDB)

    def cells(parts: list[pa.Table]) -> Cells:
        return cells_from_results(parts, spec, reported_above, years_with_plan, has_region,
                                  summary)

    # the duplicate check reads ids outside the database: run it beside the queries
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_no_duplicates, con.cursor(), members_path)
        parts = aligned_partitions(members_path, claims_path)
        try:
            found = cells(_run_parts(con, [sql(p) for p in parts])) if parts else None
        except NeedsDetail:
            found = None  # e.g. a claim filed under another partition: join it all at once
        if found is None:
            found = cells([con.sql(sql()).to_arrow_table()])
        duplicates.result()
    return found
