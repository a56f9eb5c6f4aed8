"""Cells from Parquet with DuckDB: the shared SQL (forecasting.data.engines.sql) runs in the
database. A Parquet source is a file or a hive-partitioned folder
(members/year=2021/region=R07/...).

Two paths. Claims partitioned like members: partition by partition on parallel cursors,
each members file decoded once (one file in memory per cursor), its annual costs put
beside its rows by matching sorted ids, DuckDB grouping the rows. Anything else: one FULL
JOIN over everything, out of core, without loading member rows into Python."""

from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from forecasting.data.cells import Cells, is_reported
from forecasting.data.cohorts import RESIDENCES, SEXES, CohortSpec
from forecasting.data.engines import NeedsDetail, Unsupported
from forecasting.data.engines.sql import (
    DUCKDB,
    cells_from_results,
    cells_select,
    cells_sql,
    check_schemas,
    claims_view,
    dataset,
    members_view,
    parameters,
    settlement_offences_sql,
)
from forecasting.data.io import table_files
from forecasting.data.options import DataOptions, Source
from forecasting.data.publish import glob_escape


def parquet_view(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """View `name` over a Parquet file or hive-partitioned folder, made through the relation
    API: the files go to DuckDB as a list of values (each one's glob characters escaped,
    so it matches that file only), never inside SQL text."""
    path = Path(path)
    con.read_parquet([glob_escape(str(f)) for f in table_files(path)],
                     hive_partitioning=path.is_dir()).create_view(name)


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
        return {str(f.parent.relative_to(root)) for f in table_files(root)}

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
    spec: CohortSpec
    reported_above: float
    max_cost: float  # the ceiling of a claim's and a member-year's cost
    summary: bool  # claimants leave as bucket counts: no claimant rows to collect
    rule: str = "above"

    @property
    def params(self) -> dict[str, float]:
        return {"reported_above": self.reported_above, "max_cost": self.max_cost}

    def select(self, source: str, values_checked: bool, fixed: tuple[str, ...]) -> str:
        """The shared grouped SELECT over one decoded members file with its costs."""
        return cells_select(source, self.spec, self.has_region, self.reported_above,
                            self.summary, DUCKDB, ids_checked=True,
                            values_checked=values_checked, cost="m.cost", detail=False,
                            fixed=fixed, rule=self.rule, count="m.n")

    def reported(self, cost: np.ndarray) -> np.ndarray:
        """Which annual costs make claimants (forecasting.data.cells.is_reported)."""
        return is_reported(cost, self.reported_above, self.rule)


def _leaf_files(folder: Path) -> list[Path]:
    """The data files directly in one leaf folder of a partitioned table."""
    return [f for f in table_files(folder) if f.parent == folder]


def _annual_costs(folder: Path, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Member ids (sorted, unique), annual eligible costs and claim counts (rows with a
    cost > 0) of one partition's claims; NaN cost where a claim's cost or the sum is
    missing, negative or above `max_cost` (as the SQL's annual_cost)."""
    table = pa.concat_tables(pq.read_table(f, columns=["member_id", "eligible_cost"])
                             for f in _leaf_files(folder))
    if table.column("member_id").null_count:
        raise NeedsDetail("claim without member id")
    cost = pc.fill_null(table.column("eligible_cost").cast(pa.float64()), np.nan).to_numpy()
    cost = np.where((cost < 0) | (cost > max_cost), np.nan, cost)
    ids = table.column("member_id").to_numpy()
    positive = (cost > 0).astype("int64")
    if len(ids) > 1 and (ids[1:] >= ids[:-1]).all():  # claims in member order: no sort
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        ids, total, n = (ids[starts], np.add.reduceat(cost, starts),
                         np.add.reduceat(positive, starts))
    else:
        ids, member = np.unique(ids, return_inverse=True)
        total = np.bincount(member, weights=cost, minlength=len(ids))
        n = np.bincount(member, weights=positive, minlength=len(ids)).astype("int64")
    return ids, np.where(total > max_cost, np.nan, total), n


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


def _coded(column: pa.ChunkedArray, allowed: tuple[str, ...]) -> np.ndarray:
    """Category codes (int8) of a text column, -1 for a value not allowed or missing."""
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    remap = np.array([allowed.index(v) if v in allowed else -1
                      for v in array.dictionary.to_pylist()] + [-1], dtype="int8")
    indices = pc.fill_null(array.indices, len(array.dictionary)).to_numpy()
    return remap[indices]


def _partition_keys(leaf: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in Path(leaf).parts if "=" in p)


def _members_file(q: Query, file: Path, year: int, region: str | None) -> pa.Table:
    """A members file decoded once into the columns the query groups by, categories coded;
    `member_id` kept for the join."""
    wanted = ["member_id", q.age_col, "sex", "residence", "special_group", "exposure"]
    if q.has_region and region is None:
        wanted.append("region")
    t = pq.read_table(file, columns=wanted, use_threads=False)
    age = t.column(q.age_col).cast(pa.int32())
    return pa.table({
        "member_id": t.column("member_id"),
        "age": age if q.age_col == "age" else pc.subtract(pa.scalar(year, pa.int32()), age),
        "sex": _coded(t.column("sex"), SEXES),
        "residence": _coded(t.column("residence"), RESIDENCES),
        "special_group": t.column("special_group"),
        "exposure": t.column("exposure").cast(pa.float64()),
        **({"region": t.column("region").cast(pa.string())} if "region" in wanted else {}),
    })


def _join_part(con: duckdb.DuckDBPyConnection, q: Query, leaf: str
               ) -> tuple[list[pa.Table], list[pa.Table], Ranges]:
    """Cells and claimant rows of one partition. Each members file is decoded once: its
    ids are checked for repeats and searched for the claims' member-years, the annual cost
    goes beside each row, the database groups the rows and the claimants are taken by
    position (no hash join, no list aggregate)."""
    cur = con.cursor()
    claim_ids, claim_cost, claim_n = _annual_costs(q.claims / leaf, q.max_cost)
    keys = _partition_keys(leaf)
    year, region = int(keys["year"]), keys.get("region") if q.has_region else None
    matched = np.zeros(len(claim_ids), dtype=bool)
    results, claimants, ranges = [], [], []
    for file in _leaf_files(q.members / leaf):
        members = _members_file(q, file, year, region)
        if members.column("member_id").null_count:
            raise NeedsDetail("missing member ids")
        if not members.num_rows:
            continue
        ids, order = _sorted_ids(members.column("member_id").to_numpy())
        ranges.append((year, int(ids[0]), int(ids[-1])))
        # each claimant's row in the file
        pos = np.minimum(np.searchsorted(ids, claim_ids), len(ids) - 1)
        hit = ids[pos] == claim_ids
        matched |= hit
        rows = pos[hit] if order is None else order[pos[hit]]
        has = np.zeros(len(ids), dtype=bool)
        has[rows] = True
        cost, n = np.zeros(len(ids)), np.zeros(len(ids), dtype="int64")
        cost[rows], n[rows] = claim_cost[hit], claim_n[hit]
        cur.register("part", members.append_column("cost", pa.array(cost, mask=~has))
                     .append_column("n", pa.array(n)))
        fixed = ("year", "region") if region is not None else ("year",)
        checked = values_in_range(file, q.age_col, year)
        sql = q.select("part m", values_checked=checked, fixed=fixed)
        found = cur.sql(sql, params=DUCKDB.bind(sql, q.params)).to_arrow_table()
        found = found.append_column("year", pa.repeat(pa.scalar(year, pa.int32()), len(found)))
        if region is not None:
            found = found.append_column("region", pa.repeat(region, len(found)))
        results.append(found)
        if not q.summary:
            claimants.append(_claimant_rows(
                q, members, rows[q.reported(claim_cost[hit])], cost, year, region))
    if not matched.all():
        raise NeedsDetail("a claim without its member-year in the same partition")
    return results, claimants, ranges


def _claimant_rows(q: Query, members: pa.Table, rows: np.ndarray, cost: np.ndarray,
                   year: int, region: str | None) -> pa.Table:
    """Claimants of one file, keyed like the query's groups (sex and residence coded)."""
    rows = np.sort(rows)
    wanted = ["age", "sex", "residence", "special_group", *(["region"] if q.has_region
                                                             and region is None else [])]
    picked = members.select(wanted).take(pa.array(rows))
    age = picked.column("age").to_numpy()
    out = {"year": pa.array(np.full(len(rows), year)), "age_band": pa.array(q.spec.band(age)),
           **{key: picked.column(key) for key in ("sex", "residence", "special_group")}}
    if q.has_region:
        out["region"] = (pa.repeat(region, len(rows)) if region is not None
                         else picked.column("region"))
    return pa.table({**out, "age": picked.column("age"), "cost": pa.array(cost[rows])})


def _run_parts(con: duckdb.DuckDBPyConnection, q: Query, leaves: list[str]
               ) -> tuple[list[pa.Table], pa.Table | None]:
    """Partitions on as many cursors as DuckDB has threads, one thread each."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    con.execute("SET threads = 1")
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(leaves)))) as pool:
            done = list(pool.map(lambda leaf: _join_part(con, q, leaf), leaves))
    finally:
        con.execute("SET threads = $1", [threads])
    _disjoint(con, [r for *_, ranges in done for r in ranges])
    rows = [c for _, claimants, _ in done for c in claimants]
    return ([t for tables, _, _ in done for t in tables],
            pa.concat_tables(rows) if rows else None)


def _config(options: DataOptions) -> dict:
    """DuckDB's settings from the options: its memory limit and threads, when given."""
    return {k: v for k, v in (("memory_limit", options.memory_limit),
                              ("threads", options.threads)) if v is not None}


def cells_from_parquet(source: Source, options: DataOptions) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off.

    Claims partitioned like members (by year, and region...) are matched partition by
    partition without a hash join; otherwise one FULL JOIN runs over everything."""
    if not source.parquet:
        raise Unsupported("the duckdb engine reads Parquet; got CSV files")
    if options.as_of is not None:
        raise Unsupported("the as-of view (--as-of) is read by the pandas engine")
    spec, reported_above, summary = source.spec, options.reported_above, options.severity_summary
    members_path, claims_path = source.members, source.claims
    age_col, has_region = check_schemas(members_path, claims_path, spec)
    con = duckdb.connect(config=_config(options))
    con.execute("SET enable_progress_bar = false")
    parquet_view(con, "m_src", members_path)
    parquet_view(con, "c_src", claims_path)
    dates = settlement_offences_sql("c_src", claims_path)
    if dates and con.execute(dates).fetchall()[0][0]:
        raise NeedsDetail("a claim settled before its care, or without a readable date")
    members = members_view("m_src", age_col, has_region)
    # a plain view (not TEMP) so that every cursor sees it
    con.execute(f"CREATE VIEW m AS {members}")

    def cells(parts: list[pa.Table], claimants: pa.Table | None = None) -> Cells:
        return cells_from_results(parts, spec, reported_above, has_region, summary, claimants,
                                  options.threshold_rule)

    leaves = year_partitions(members_path, claims_path)
    if leaves:
        q = Query(Path(members_path), Path(claims_path), age_col, has_region, spec,
                  reported_above, options.max_cost, summary, options.threshold_rule)
        with contextlib.suppress(NeedsDetail):  # e.g. a claim filed under another partition
            return cells(*_run_parts(con, q, leaves))
    sql = cells_sql(members, claims_view("c_src"), spec, has_region, reported_above, summary,
                    DUCKDB, options.threshold_rule)
    # the duplicate check reads ids outside the database: run it beside the query
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_no_duplicates, con.cursor(), members_path)
        found = cells([con.sql(sql, params=DUCKDB.bind(sql, parameters(options)))
                       .to_arrow_table()])
        duplicates.result()
    return found


@dataclass(frozen=True)
class DuckDBEngine:
    """Parquet through DuckDB: parallel, out of core, memory-limited."""

    name: str = "duckdb"
    failures: tuple[type[BaseException], ...] = (duckdb.Error, pa.ArrowException, OSError)

    def cells(self, source: Source, options: DataOptions) -> Cells:
        return cells_from_parquet(source, options)


ENGINE = DuckDBEngine()
