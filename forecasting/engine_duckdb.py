"""Cells from Parquet files with DuckDB: checks and aggregation run in the database, in
parallel and out of core, without loading member rows into Python.

The checks only count offences; when a count is not zero the caller re-reads with the
pandas engine, whose messages name the rows. So both engines fail with the same words.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from forecasting.cells import Cells, canonical_order
from forecasting.cohorts import RESIDENCES, SEXES, CohortSpec

NUMERIC = ("int", "float", "double", "decimal")


class NeedsDetail(Exception):
    """An offence was counted: the pandas engine will say exactly where."""


def _types_ok(path: Path, expected: dict[str, tuple[str, ...]]) -> None:
    schema = pq.read_schema(path)
    for name, kinds in expected.items():
        if name not in schema.names:
            raise NeedsDetail(name)
        typ = str(schema.field(name).type)
        if not any(k in typ for k in kinds):
            raise NeedsDetail(name)


def _count_zero(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    counts = con.execute(sql).fetchone()
    if counts is None or any(c for c in counts):
        raise NeedsDetail(sql)


def _no_duplicates(con: duckdb.DuckDBPyConnection, members_path: Path) -> None:
    """One row per member-year. Integer ids in a compact range are checked with a bitmap
    count (one pass, no hashing); other ids with a DuckDB distinct count."""
    ids = pq.read_table(members_path, columns=["member_id", "year"])
    member = ids.column("member_id").to_numpy()
    year = ids.column("year").to_numpy()
    y0, span = int(year.min()), int(year.max() - year.min() + 1)
    lo, hi = int(member.min()), int(member.max())
    if (hi - lo + 1) * span <= 8 * len(member) + 1_000_000:
        counts = np.bincount((member - lo) * span + (year - y0))
        if counts.max() > 1:
            raise NeedsDetail("duplicate member-years")
        return
    _count_zero(con, "SELECT count(*) - count(DISTINCT (member_id, year)) FROM m")


def cells_from_parquet(
    members_path: Path, claims_path: Path, spec: CohortSpec, reported_above: float,
    years_with_plan: list[int],
) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off."""
    age_col = "age" if "age" in pq.read_schema(members_path).names else "birth_year"
    _types_ok(members_path, {"member_id": ("int",), "year": ("int",), age_col: ("int",),
                             "sex": ("string",), "residence": ("string",),
                             "special_group": ("bool",), "exposure": NUMERIC})
    _types_ok(claims_path, {"member_id": ("int",), "year": ("int",), "eligible_cost": NUMERIC})
    con = duckdb.connect()
    age = "age" if age_col == "age" else "year - birth_year"
    plan_years = ", ".join(str(y) for y in years_with_plan)
    con.execute(f"""CREATE VIEW m AS SELECT member_id, year, {age} AS age, sex, residence,
                    special_group, exposure FROM read_parquet('{members_path}')""")
    con.execute(f"""CREATE VIEW c AS SELECT member_id, year, eligible_cost
                    FROM read_parquet('{claims_path}')""")
    sexes, residences = (", ".join(f"'{v}'" for v in vals) for vals in (SEXES, RESIDENCES))
    _count_zero(con, f"""SELECT
        count(*) = 0,
        count(*) FILTER (WHERE member_id IS NULL OR year IS NULL OR age IS NULL
                         OR special_group IS NULL),
        count(*) FILTER (WHERE exposure IS NULL OR isnan(exposure) OR exposure <= 0
                         OR exposure > 1),
        count(*) FILTER (WHERE age < 0 OR age > 120),
        count(*) FILTER (WHERE sex IS NULL OR sex NOT IN ({sexes})),
        count(*) FILTER (WHERE residence IS NULL OR residence NOT IN ({residences})),
        count(*) FILTER (WHERE year NOT IN ({plan_years}))
        FROM m""")
    _no_duplicates(con, members_path)
    _count_zero(con, f"""SELECT
        count(*) = 0,
        count(*) FILTER (WHERE member_id IS NULL OR year IS NULL),
        count(*) FILTER (WHERE eligible_cost IS NULL OR isnan(eligible_cost)
                         OR eligible_cost < 0 OR isinf(eligible_cost)),
        count(*) FILTER (WHERE year NOT IN ({plan_years}))
        FROM c""")
    band = f"least(m.age // {spec.band_width}, {spec.n_bands - 1}) * {spec.band_width}"
    keys = ", ".join(f"m.{k}" for k in spec.keys)
    sep = ", " if keys else ""
    table = con.execute(f"""SELECT m.year, {band} AS age_band{sep}{keys},
        sum(m.exposure) AS exposure, count(*) AS insured
        FROM m GROUP BY ALL ORDER BY ALL""").df()
    # One join gives the claimants and proves every claim has its member-year.
    claimants = con.execute(f"""
        WITH a AS (SELECT member_id, year, sum(eligible_cost) AS cost FROM c GROUP BY ALL)
        SELECT a.year, {band} AS age_band{sep}{keys}, m.age,
               m.special_group AS special, a.cost,
               m.member_id IS NULL AS orphan
        FROM a LEFT JOIN m USING (member_id, year)""").df()
    if claimants["orphan"].any():
        raise NeedsDetail("claims without member-year")
    cost = claimants["cost"]
    if reported_above > 0 and ((cost > 0) & (cost <= reported_above)).any():
        raise NeedsDetail("costs below reported_above")
    claimants = claimants[cost > reported_above].drop(columns="orphan")
    claimants["special_group"] = claimants.pop("special").astype(bool)
    return _assemble(table, claimants, spec, reported_above)


def _assemble(table: pd.DataFrame, claimants: pd.DataFrame, spec: CohortSpec,
              reported_above: float) -> Cells:
    """Typed columns, claimant counts and costs per cell, in the pandas engine's layout."""
    cat = {"sex": SEXES, "residence": RESIDENCES}
    for frame in (table, claimants):
        frame["year"] = frame["year"].astype("int64")
        frame["age_band"] = frame["age_band"].astype("int64")
        for key in spec.keys:
            frame[key] = (frame[key].astype(bool) if key == "special_group"
                          else pd.Categorical(frame[key].astype(str), categories=cat[key]))
    keys = ["year", *spec.columns]
    per_cell = claimants.groupby(keys, observed=True)["cost"].agg(["size", "sum"])
    table = table.sort_values(keys).reset_index(drop=True)
    idx = pd.MultiIndex.from_frame(table[keys])
    table["insured"] = table["insured"].astype("int64")
    table["claimants"] = per_cell["size"].reindex(idx, fill_value=0).to_numpy(dtype="int64")
    table["cost"] = per_cell["sum"].reindex(idx, fill_value=0.0).to_numpy(dtype="float64")
    claimants["age"] = claimants["age"].astype("int64")
    return Cells(table, canonical_order(claimants, spec), spec, float(reported_above))


