"""Cells from Parquet with DuckDB: the shared SQL (forecasting.aggregation) runs in the
database, in parallel and out of core, without loading member rows into Python. A
Parquet source is a file or a hive-partitioned folder (members/year=2021/region=R07/...)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from forecasting.aggregation import (
    DUCKDB,
    NeedsDetail,
    cells_from_results,
    cells_select,
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


def duckdb_source(path: Path, hive: bool = False) -> str:
    """read_parquet over a file or a folder; hive: take partition columns from the path
    (always for a folder; for a file only when it sits in a partition folder)."""
    path = Path(path)
    if path.is_dir():
        return f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
    return f"read_parquet('{path}'{', hive_partitioning = true' if hive else ''})"


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


def _sorted_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A file's member ids sorted, and the sorting order (None: already in order, as files
    written in id order are); repeats -> NeedsDetail."""
    if (ids[1:] > ids[:-1]).all():
        return ids, None
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if (ids[1:] == ids[:-1]).any():
        raise NeedsDetail("repeated member ids")
    return ids, order


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
    y0 = int(year.min())  # the years present, without sorting millions of rows
    return member, year, [y0 + int(i) for i in np.flatnonzero(np.bincount(year - y0))]


Ranges = list[tuple[int, int, int]]  # (year, lowest id, highest id) of one file


def _no_duplicates(con: duckdb.DuckDBPyConnection, members_path: Path) -> None:
    """One row per member-year, file by file, then across files (_disjoint)."""
    ranges: Ranges = []
    for frag in dataset(members_path).get_fragments():
        member, year, years = _years_of(frag)
        if not _unique(member, year):
            raise NeedsDetail("duplicate member-years")
        for y in years:
            ids = member if year is None else member[year == y]
            if len(ids):
                ranges.append((y, int(ids.min()), int(ids.max())))
    _disjoint(con, ranges)


def _disjoint(con: duckdb.DuckDBPyConnection, ranges: Ranges) -> None:
    """No member-year in two files: files' id ranges within a year do not overlap, or
    else a database count over view `m` finds no repeat."""
    ranges = sorted(ranges)
    if any(a[0] == b[0] and b[1] <= a[2] for a, b in itertools.pairwise(ranges)):
        dup = con.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT (member_id, year)) FROM m").fetchone()
        if dup[0]:
            raise NeedsDetail("duplicate member-years")


def year_partitions(members_path: Path, claims_path: Path) -> list[str]:
    """Leaf folders (relative paths, e.g. year=2021/region=R07) that members and claims
    both have and nothing else, each naming its year: claims partitioned like members
    are joined part by part. Empty when they are not (or are single files)."""
    def leaves(root: Path) -> set[str]:
        if not root.is_dir():
            return set()
        return {str(f.parent.relative_to(root)) for f in root.rglob("*.parquet")}

    found = leaves(Path(members_path))
    aligned = len(found) > 1 and found == leaves(Path(claims_path))
    return sorted(found) if aligned and all("year=" in leaf for leaf in found) else []


@dataclass(frozen=True)
class Query:
    """What the part-by-part join needs to know to build each part's query."""

    members: Path
    claims: Path
    age_col: str
    has_region: bool
    select: Callable[..., str]  # cells_select with the spec and options bound


def _annual_costs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Member ids (sorted, unique) and annual eligible costs (CNY) of one partition's
    claims; NaN where a claim's cost is missing, negative or absurd (as the SQL's)."""
    table = pa.concat_tables(pq.read_table(f, columns=["member_id", "eligible_cost"])
                             for f in sorted(folder.glob("*.parquet")))
    if table.column("member_id").null_count:
        raise NeedsDetail("claim without member id")
    cost = pc.fill_null(table.column("eligible_cost").cast(pa.float64()), np.nan).to_numpy()
    cost = np.where((cost < 0) | (cost > 1e300), np.nan, cost)
    ids, member = np.unique(table.column("member_id").to_numpy(), return_inverse=True)
    return ids, np.bincount(member, weights=cost, minlength=len(ids))


def values_in_range(file: Path, age_col: str, year: int) -> bool:
    """Whether the file's Parquet statistics prove every exposure in (0, 1] (NaN aside,
    which statistics skip) and every age in 0..120, with no missing values: then the
    query need not test each row. False when a statistic is missing or out of range."""
    meta = pq.ParquetFile(file).metadata
    names = meta.schema.names
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for name, lo_ok, hi_ok in (
                ("exposure", lambda lo: lo > 0, lambda hi: hi <= 1),
                (age_col, lambda lo: lo >= 0, lambda hi: hi <= 120) if age_col == "age" else
                (age_col, lambda lo: year - lo <= 120, lambda hi: year - hi >= 0)):
            if name not in names:
                return False
            stats = group.column(names.index(name)).statistics
            if stats is None or not stats.has_min_max or stats.null_count != 0:
                return False
            if not (lo_ok(stats.min) and hi_ok(stats.max)):
                return False
    return True


def _join_part(con: duckdb.DuckDBPyConnection, q: Query, leaf: str
               ) -> tuple[list[pa.Table], Ranges]:
    """Cells of one partition: each members file gets its rows' annual costs by position
    (ids are read once, here, and checked for repeats on the way), so the database joins
    row by row instead of through a hash table."""
    cur = con.cursor()
    claim_ids, claim_cost = _annual_costs(q.claims / leaf)
    year = int(dict(p.split("=", 1) for p in Path(leaf).parts if "=" in p)["year"])
    matched = np.zeros(len(claim_ids), dtype=bool)
    results, ranges = [], []
    for file in sorted((q.members / leaf).glob("*.parquet")):
        column = pq.read_table(file, columns=["member_id"]).column("member_id")
        if column.null_count:
            raise NeedsDetail("missing member ids")
        if not column.length():
            continue
        ids, order = _sorted_ids(column.to_numpy())
        ranges.append((year, int(ids[0]), int(ids[-1])))
        # each claimant's row in the file
        pos = np.minimum(np.searchsorted(ids, claim_ids), len(ids) - 1)
        hit = ids[pos] == claim_ids
        matched |= hit
        rows = pos[hit] if order is None else order[pos[hit]]
        has = np.zeros(len(ids), dtype=bool)
        has[rows] = True
        cost = np.zeros(len(ids))
        cost[rows] = claim_cost[hit]
        cur.register("costs", pa.table({"cost": pa.array(cost, mask=~has)}))
        source = (f"({members_view(duckdb_source(file, hive=True), q.age_col, q.has_region)})"
                  f" m POSITIONAL JOIN costs a")
        checked = values_in_range(file, q.age_col, year)
        results.append(cur.sql(q.select(source, values_checked=checked)).to_arrow_table())
    if not matched.all():
        raise NeedsDetail("a claim without its member-year in the same partition")
    return results, ranges


def _run_parts(con: duckdb.DuckDBPyConnection, q: Query, leaves: list[str]
               ) -> list[pa.Table]:
    """Partitions on as many cursors as DuckDB has threads, one thread each (which also
    keeps each positional join in file order)."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    con.execute("SET threads = 1")
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(leaves)))) as pool:
            done = list(pool.map(lambda leaf: _join_part(con, q, leaf), leaves))
    finally:
        con.execute(f"SET threads = {threads}")
    _disjoint(con, [r for _, ranges in done for r in ranges])
    return [t for tables, _ in done for t in tables]


def cells_from_parquet(
    members_path: Path, claims_path: Path, spec: CohortSpec, reported_above: float,
    years_with_plan: list[int], memory_limit: str | None = None, summary: bool = False,
) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off.

    Claims partitioned like members (by year, and region...) are joined partition by
    partition and row by row; otherwise one FULL JOIN runs over everything."""
    age_col, has_region = check_schemas(members_path, claims_path)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    # a plain view (not TEMP) so that every cursor sees it
    con.execute(f"CREATE VIEW m AS "
                f"{members_view(duckdb_source(members_path), age_col, has_region)}")

    def cells(parts: list[pa.Table]) -> Cells:
        return cells_from_results(parts, spec, reported_above, years_with_plan, has_region,
                                  summary)

    leaves = year_partitions(members_path, claims_path)
    if leaves:
        select = partial(cells_select, spec=spec, has_region=has_region,
                         reported_above=reported_above, summary=summary, dialect=DUCKDB,
                         ids_checked=True)
        q = Query(Path(members_path), Path(claims_path), age_col, has_region, select)
        with contextlib.suppress(NeedsDetail):  # e.g. a claim filed under another partition
            return cells(_run_parts(con, q, leaves))
    sql = cells_sql(members_view(duckdb_source(members_path), age_col, has_region),
                    claims_view(duckdb_source(claims_path)), spec, has_region,
                    reported_above, summary, DUCKDB)
    # the duplicate check reads ids outside the database: run it beside the query
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_no_duplicates, con.cursor(), members_path)
        found = cells([con.sql(sql).to_arrow_table()])
        duplicates.result()
    return found
