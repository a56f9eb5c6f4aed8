"""The member/claim -> cell aggregation, written once in SQL that DuckDB and Spark both run.

The checks of the data contract ride along as per-cell aggregates and offence counts; an
engine that finds one raises NeedsDetail and the pandas engine re-reads the files to name
the rows, so every engine fails with the same words.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from forecasting.cells import Cells, claimant_columns
from forecasting.cohorts import RESIDENCES, SEXES, CohortSpec

Query = Callable[[str], pd.DataFrame]


class NeedsDetail(Exception):
    """An offence was counted: the pandas engine will say exactly where."""


def _codes(column: str, allowed: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN '{v}' THEN {i}" for i, v in enumerate(allowed))
    return f"CAST(CASE {column} {whens} END AS TINYINT)"


def members_view(source: str, age_col: str, has_region: bool) -> str:
    """SELECT over the members source with typed, coded columns (categories as codes, NULL
    when not allowed, as pandas categoricals hold them)."""
    age = "age" if age_col == "age" else "year - birth_year"
    region = ", CAST(region AS STRING) AS region" if has_region else ""
    return (f"SELECT member_id, CAST(year AS INT) AS year, CAST({age} AS INT) AS age, "
            f"{_codes('sex', SEXES)} AS sex, {_codes('residence', RESIDENCES)} AS residence, "
            f"special_group, CAST(exposure AS DOUBLE) AS exposure{region} FROM {source}")


def claims_view(source: str) -> str:
    return (f"SELECT member_id, CAST(year AS INT) AS year, "
            f"CAST(eligible_cost AS DOUBLE) AS eligible_cost FROM {source}")


def _band(spec: CohortSpec) -> str:
    return (f"LEAST(CAST(FLOOR(m.age / {spec.band_width}) AS INT), {spec.n_bands - 1}) "
            f"* {spec.band_width}")


def member_cells_sql(spec: CohortSpec, has_region: bool) -> str:
    """Exposure and head count by year x every key, with the members' checks as aggregates
    (non-null counts, min and max; categories as group keys): one scan, no predicates."""
    region = ", m.region" if has_region else ""
    n_keys = 5 + has_region
    return f"""SELECT m.year, {_band(spec)} AS age_band, m.sex, m.residence, m.special_group
        {region}, SUM(m.exposure) AS exposure, COUNT(*) AS insured,
        COUNT(m.member_id) AS n_ids, COUNT(m.exposure) AS n_exp, MIN(m.exposure) AS min_exp,
        MAX(m.exposure) AS max_exp, MIN(m.age) AS min_age, MAX(m.age) AS max_age
        FROM m GROUP BY {", ".join(str(i) for i in range(1, n_keys + 1))}"""


def claimants_sql(spec: CohortSpec, years_with_plan: list[int]) -> str:
    """One join: each member-year's annual cost with its cohort, whether it has a member
    (orphan) and the offences among its claim rows."""
    plan_years = ", ".join(str(y) for y in years_with_plan)
    keys = "".join(f", m.{k}" for k in spec.keys)
    return f"""WITH a AS (SELECT member_id, year, SUM(eligible_cost) AS cost,
            COUNT(*) FILTER (WHERE eligible_cost IS NULL OR isnan(eligible_cost)
                             OR eligible_cost < 0 OR eligible_cost > 1e300
                             OR year NOT IN ({plan_years})) AS offences
            FROM c GROUP BY 1, 2)
        SELECT a.year, {_band(spec)} AS age_band{keys}, m.age,
               m.special_group AS special, a.cost, a.offences,
               m.member_id IS NULL AS orphan
        FROM a LEFT JOIN m ON a.member_id = m.member_id AND a.year = m.year"""


def check_member_cells(table: pd.DataFrame, years_with_plan: list[int]) -> None:
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


def aggregate_sql(query: Query, spec: CohortSpec, reported_above: float,
                  years_with_plan: list[int], has_region: bool, summary: bool = False,
                  execute: Callable[[str], object] | None = None) -> Cells:
    """Cells from views `m` and `c` that `query` can read (any SQL engine).

    summary=True: claimants never leave the engine; it sends counts and sums of their costs
    in log buckets per cohort (forecasting.summary), from which the claimant rows are
    rebuilt to bucket resolution. `execute` must then create views.
    """
    if "region" in spec.keys and not has_region:
        raise NeedsDetail("no region column")
    full = query(member_cells_sql(spec, has_region))
    check_member_cells(full, years_with_plan)
    table = full.groupby(["year", *spec.columns], as_index=False)[["exposure", "insured"]].sum()
    if summary:
        return _via_summary(query, execute, table, spec, reported_above, years_with_plan)
    claimants = query(claimants_sql(spec, years_with_plan))
    if claimants.empty or claimants.pop("offences").sum():
        raise NeedsDetail("claims")
    if claimants["orphan"].any():
        raise NeedsDetail("claims without member-year")
    cost = claimants["cost"]
    if reported_above > 0 and ((cost > 0) & (cost <= reported_above)).any():
        raise NeedsDetail("costs below reported_above")
    claimants = claimants[cost > reported_above].drop(columns="orphan")
    claimants["special_group"] = claimants.pop("special").astype(bool)
    return assemble(table, claimants, spec, reported_above)


def _via_summary(query: Query, execute, table: pd.DataFrame, spec: CohortSpec,
                 reported_above: float, years_with_plan: list[int]) -> Cells:
    """The claimant checks as counts, then the bucketed summary of claimants' costs."""
    if "special_group" not in spec.keys:
        raise ValueError("a severity summary needs special_group among the cohort keys")
    execute(f"CREATE OR REPLACE TEMP VIEW cj AS {claimants_sql(spec, years_with_plan)}")
    checks = query(f"""SELECT COUNT(*) AS n, SUM(offences) AS offences,
        SUM(CASE WHEN orphan THEN 1 ELSE 0 END) AS orphans,
        SUM(CASE WHEN cost > 0 AND cost <= {reported_above} THEN 1 ELSE 0 END) AS low
        FROM cj""").iloc[0]
    if not checks["n"] or checks["offences"] or checks["orphans"] or (
            reported_above > 0 and checks["low"]):
        raise NeedsDetail("claims")
    keys = ["year", *spec.columns]
    execute(f"CREATE OR REPLACE TEMP VIEW cl AS SELECT {', '.join(keys)}, cost FROM cj "
            f"WHERE cost > {reported_above}")
    from forecasting.summary import SeveritySummary, summary_sql

    found = query(summary_sql(keys))
    found["n"] = found["n"].astype("int64")
    claimants = SeveritySummary(found, tuple(keys)).expand()
    claimants["age"] = claimants["age_band"].astype("int64") + (spec.band_width - 1) // 2
    return assemble(table, claimants, spec, reported_above)


def assemble(table: pd.DataFrame, claimants: pd.DataFrame, spec: CohortSpec,
             reported_above: float) -> Cells:
    """Typed columns, claimant counts and costs per cell, in the pandas engine's layout."""
    cat = {"sex": SEXES, "residence": RESIDENCES}
    for frame in (table, claimants):
        frame["year"] = frame["year"].astype("int64")
        frame["age_band"] = frame["age_band"].astype("int64")
        for key in spec.keys:
            if key == "special_group":
                frame[key] = frame[key].astype(bool)
            elif key == "region":
                frame[key] = frame[key].astype("str")
            else:
                frame[key] = pd.Categorical.from_codes(frame[key].astype("int8"), cat[key])
    keys = ["year", *spec.columns]
    per_cell = claimants.groupby(keys, observed=True)["cost"].agg(["size", "sum"])
    table = table.sort_values(keys).reset_index(drop=True)
    idx = pd.MultiIndex.from_frame(table[keys])
    table["insured"] = table["insured"].astype("int64")
    table["exposure"] = table["exposure"].astype("float64")
    table["claimants"] = per_cell["size"].reindex(idx, fill_value=0).to_numpy(dtype="int64")
    table["cost"] = per_cell["sum"].reindex(idx, fill_value=0.0).to_numpy(dtype="float64")
    claimants["age"] = claimants["age"].astype("int64")
    claimants["cost"] = claimants["cost"].astype("float64")
    claimants = claimants[claimant_columns(spec)].reset_index(drop=True)
    return Cells(table, claimants, spec, float(reported_above))
