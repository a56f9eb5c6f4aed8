"""Cells from Parquet files with DuckDB: checks and aggregation run in the database, in
parallel and out of core, without loading member rows into Python.

The checks only count offences; when a count is not zero the caller re-reads with the
pandas engine, whose messages name the rows. So both engines fail with the same words.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecasting.cells import Cells, claimant_columns
from forecasting.cohorts import RESIDENCES, SEXES, CohortSpec
from forecasting.contract import age_column

NUMERIC = ("int", "float", "double", "decimal")


class NeedsDetail(Exception):
    """An offence was counted: the pandas engine will say exactly where."""


def _types_ok(schema: pa.Schema, expected: dict[str, tuple[str, ...]]) -> None:
    """Parquet types the SQL checks rely on; anything else goes to the pandas engine."""
    for name, kinds in expected.items():
        if name not in schema.names:
            raise NeedsDetail(name)
        typ = str(schema.field(name).type)
        if not any(k in typ for k in kinds):
            raise NeedsDetail(name)


def _codes(column: str, allowed: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(allowed))
    return f"(CASE {column} {whens} END)::TINYINT"


def _check_member_cells(table: pd.DataFrame, years_with_plan: list[int]) -> None:
    """The members contract from per-cell aggregates; any doubt -> NeedsDetail."""
    if table.empty:
        raise NeedsDetail("no members")
    ok = (
        (table["n_ids"] == table["insured"]).all()
        and (table["n_exp"] == table["insured"]).all()
        and (table["min_exp"] > 0).all() and (table["max_exp"] <= 1).all()
        and (table["min_age"] >= 0).all() and (table["max_age"] <= 120).all()
        and table["year"].isin(years_with_plan).all()
        and table[["sex", "residence", "special_group"]].notna().all().all()
    )
    if not ok:
        raise NeedsDetail("members")


def _no_duplicates(members_path: Path) -> None:
    """One row per member-year, checked without hashing: files sorted by (year, member)
    pass in one comparison; otherwise a count per key in a bitmap-sized array."""
    ids = pq.read_table(members_path, columns=["member_id", "year"])
    member = ids.column("member_id").to_numpy()
    year = ids.column("year").to_numpy()
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
    years_with_plan: list[int],
) -> Cells:
    """Validate and aggregate with DuckDB; raises NeedsDetail when anything is off."""
    schema = pq.read_schema(members_path)
    age_col = age_column(schema.names)
    _types_ok(schema, {"member_id": ("int",), "year": ("int",), age_col: ("int",),
                             "sex": ("string",), "residence": ("string",),
                             "special_group": ("bool",), "exposure": NUMERIC})
    _types_ok(pq.read_schema(claims_path),
              {"member_id": ("int",), "year": ("int",), "eligible_cost": NUMERIC})
    con = duckdb.connect()
    # The duplicate check is numpy work outside the database: run it beside the queries.
    with ThreadPoolExecutor(max_workers=1) as pool:
        duplicates = pool.submit(_no_duplicates, members_path)
        claimants, table = _query(con, members_path, claims_path, spec, reported_above,
                                  years_with_plan, age_col)
        duplicates.result()
    return _assemble(table, claimants, spec, reported_above)


def _query(con: duckdb.DuckDBPyConnection, members_path: Path, claims_path: Path,
           spec: CohortSpec, reported_above: float, years_with_plan: list[int],
           age_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the checks and aggregations in DuckDB: (claimant rows, member cells)."""
    age = "age" if age_col == "age" else "year - birth_year"
    plan_years = ", ".join(str(y) for y in years_with_plan)
    # Categories arrive as their codes (NULL when not allowed), as pandas categoricals hold them.
    con.execute(f"""CREATE VIEW m AS SELECT member_id, year, {age} AS age,
                    {_codes("sex", SEXES)} AS sex, {_codes("residence", RESIDENCES)} AS residence,
                    special_group, exposure FROM read_parquet('{members_path}')""")
    con.execute(f"""CREATE VIEW c AS SELECT member_id, year, eligible_cost
                    FROM read_parquet('{claims_path}')""")
    band = f"least(m.age // {spec.band_width}, {spec.n_bands - 1}) * {spec.band_width}"
    keys = ", ".join(f"m.{k}" for k in spec.keys)
    sep = ", " if keys else ""
    # The contract's checks ride along the cells' group-by as cheap per-cell aggregates
    # (non-null counts, min and max; categories as group keys): one scan, no predicates.
    # Grouping is always by every key; the spec's coarser cohorts are summed afterwards.
    full = con.execute(f"""SELECT m.year, {band} AS age_band, sex, residence, special_group,
        sum(m.exposure) AS exposure, count(*) AS insured, count(member_id) AS n_ids,
        count(exposure) AS n_exp, min(exposure) AS min_exp, max(exposure) AS max_exp,
        min(age) AS min_age, max(age) AS max_age
        FROM m GROUP BY ALL""").df()
    _check_member_cells(full, years_with_plan)
    table = full.groupby(["year", *spec.columns], as_index=False)[["exposure", "insured"]].sum()
    # One join gives the claimants, proves every claim has its member-year, and carries
    # the claims' own checks as a per-member-year offence count.
    claimants = con.execute(f"""
        WITH a AS (SELECT member_id, year, sum(eligible_cost) AS cost,
                          count(*) FILTER (WHERE eligible_cost IS NULL OR isnan(eligible_cost)
                                           OR eligible_cost < 0 OR isinf(eligible_cost)
                                           OR year NOT IN ({plan_years})) AS offences
                   FROM c GROUP BY ALL)
        SELECT a.year, {band} AS age_band{sep}{keys}, m.age,
               m.special_group AS special, a.cost, a.offences,
               m.member_id IS NULL AS orphan
        FROM a LEFT JOIN m USING (member_id, year)""").df()
    if claimants.empty or claimants.pop("offences").sum():
        raise NeedsDetail("claims")
    if claimants["orphan"].any():
        raise NeedsDetail("claims without member-year")
    cost = claimants["cost"]
    if reported_above > 0 and ((cost > 0) & (cost <= reported_above)).any():
        raise NeedsDetail("costs below reported_above")
    claimants = claimants[cost > reported_above].drop(columns="orphan")
    claimants["special_group"] = claimants.pop("special").astype(bool)
    return claimants, table


def _assemble(table: pd.DataFrame, claimants: pd.DataFrame, spec: CohortSpec,
              reported_above: float) -> Cells:
    """Typed columns, claimant counts and costs per cell, in the pandas engine's layout."""
    cat = {"sex": SEXES, "residence": RESIDENCES}
    for frame in (table, claimants):
        frame["year"] = frame["year"].astype("int64")
        frame["age_band"] = frame["age_band"].astype("int64")
        for key in spec.keys:
            frame[key] = (frame[key].astype(bool) if key == "special_group"
                          else pd.Categorical.from_codes(frame[key].astype("int8"), cat[key]))
    keys = ["year", *spec.columns]
    per_cell = claimants.groupby(keys, observed=True)["cost"].agg(["size", "sum"])
    table = table.sort_values(keys).reset_index(drop=True)
    idx = pd.MultiIndex.from_frame(table[keys])
    table["insured"] = table["insured"].astype("int64")
    table["claimants"] = per_cell["size"].reindex(idx, fill_value=0).to_numpy(dtype="int64")
    table["cost"] = per_cell["sum"].reindex(idx, fill_value=0.0).to_numpy(dtype="float64")
    claimants["age"] = claimants["age"].astype("int64")
    claimants = claimants[claimant_columns(spec)].reset_index(drop=True)
    return Cells(table, claimants, spec, float(reported_above))


