"""The member/claim -> cell aggregation, written once in SQL that DuckDB and Spark both run.

One pass: members FULL JOIN each member-year's annual cost, grouped by year x every cohort
key, gives exposure, head count, claimants and cost per cell, each claimant's (age, cost)
as a list (or, in summary mode, counts and sums per log cost bucket), and the checks of
the data contract as aggregates and offence counts. An engine may run the query once or
once per data partition; `cells_from_results` combines the pieces. An offence raises
NeedsDetail and the pandas engine re-reads the files to name the rows, so every engine
fails with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from forecasting.data.cells import Cells, claimant_columns
from forecasting.data.cohorts import RESIDENCES, SEXES, CohortSpec
from forecasting.data.contract import age_column
from forecasting.data.engines import NeedsDetail, Unsupported
from forecasting.data.summary import SeveritySummary, bucket_sql

NUMERIC = ("int", "float", "double", "decimal")


def dataset(path: Path) -> pads.Dataset:
    """A Parquet file or hive-partitioned folder as an Arrow dataset."""
    return pads.dataset(path, format="parquet", partitioning="hive")


def types_ok(schema: pa.Schema, expected: dict[str, tuple[str, ...]]) -> None:
    """Parquet types the SQL checks rely on: a missing column is an offence the pandas
    engine names; a column of another type is one the SQL engines cannot read."""
    for name, kinds in expected.items():
        if name not in schema.names:
            raise NeedsDetail(f"missing column {name!r}")
        if not any(k in str(schema.field(name).type) for k in kinds):
            raise Unsupported(f"column {name!r} is {schema.field(name).type}; the SQL "
                              f"engines read {' or '.join(kinds)} there")


LAYOUT = ("year", "exposure", "sex", "residence", "special_group")


def check_schemas(members_path: Path, claims_path: Path, spec: CohortSpec) -> tuple[str, bool]:
    """(age column, has region) after checking both sources' column types. The SQL engines
    read L city's layout; other keys, policy periods or claims dated by service date are
    read by the pandas engine (Unsupported)."""
    schema = dataset(members_path).schema
    claims = dataset(claims_path).schema
    other = [k for k in spec.keys if k not in LAYOUT and k != "region"]
    absent = [c for c in (*LAYOUT, *spec.keys) if c not in schema.names]
    if other or (absent and "period_start" in schema.names) or (
            "year" not in claims.names and "service_date" in claims.names):
        raise Unsupported(f"the SQL engines read L city's layout ({', '.join(LAYOUT)}, region) "
                          f"with a year on each claim; these data have "
                          f"{other or absent or ['claims dated by service_date']}")
    age_col = age_column(schema.names)
    types_ok(schema, {"member_id": ("int",), "year": ("int",), age_col: ("int",),
                      "sex": ("string",), "residence": ("string",),
                      "special_group": ("bool",), "exposure": NUMERIC})
    types_ok(claims, {"member_id": ("int",), "year": ("int",), "eligible_cost": NUMERIC})
    return age_col, "region" in schema.names


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines: how a list of (age, cost) pairs is collected,
    how integers divide and how a named query parameter is written."""

    collect: str  # format string with {age} and {cost}
    int_div: str  # format string with {a} and {b}
    param: str  # format string with {name}

    def p(self, name: str) -> str:
        """The marker of query parameter `name` (its value goes in `bind`, never the text)."""
        return self.param.format(name=name)

    def bind(self, sql: str, values: dict[str, float]) -> dict[str, float]:
        """The parameter values a query uses (the engines refuse unused ones)."""
        return {k: float(v) for k, v in values.items() if self.p(k) in sql}


DUCKDB = Dialect("LIST(struct_pack(age := {age}, cost := {cost}))", "({a} // {b})", "${name}")
SPARK = Dialect("collect_list(named_struct('age', {age}, 'cost', {cost}))", "({a} div {b})",
                ":{name}")


def parameters(options) -> dict[str, float]:
    """The user's values the SQL compares with, passed as query parameters: the reporting
    threshold and the cost ceiling (DataOptions; money units of the data)."""
    return {"reported_above": options.reported_above, "max_cost": options.max_cost}


def members_view(source: str, age_col: str, has_region: bool) -> str:
    """SELECT over the members source with typed columns (sex and residence stay text: the
    cells are few, so they are coded after the query)."""
    age = "age" if age_col == "age" else "year - birth_year"
    region = ", CAST(region AS STRING) AS region" if has_region else ""
    return (f"SELECT member_id, CAST(year AS INT) AS year, CAST({age} AS INT) AS age, "
            f"CAST(sex AS STRING) AS sex, CAST(residence AS STRING) AS residence, "
            f"special_group, CAST(exposure AS DOUBLE) AS exposure{region} FROM {source}")


def claims_view(source: str) -> str:
    return (f"SELECT member_id, CAST(year AS INT) AS year, "
            f"CAST(eligible_cost AS DOUBLE) AS eligible_cost FROM {source}")


def settlement_offences_sql(source: str, claims_path: Path) -> str | None:
    """A count of the claims whose settlement date is missing, unreadable or before their
    care (their service date, or their year without one): the data contract's check
    (forecasting.data.contract._settled), made whether or not the dates are read; None
    when the claims carry no settlement date."""
    names = dataset(claims_path).schema.names
    if "settlement_date" not in names:
        return None
    settled = "TRY_CAST(settlement_date AS DATE)"
    care = ("TRY_CAST(service_date AS DATE)" if "service_date" in names
            else "make_date(CAST(year AS INT), 1, 1)")
    return (f"SELECT COUNT(*) AS n FROM {source} WHERE {settled} IS NULL OR {care} IS NULL "
            f"OR {settled} < {care}")


def reported_sql(cost: str, threshold: float, rule: str, marker: str) -> str:
    """SQL of forecasting.data.cells.is_reported: which annual costs make a claimant; the
    threshold enters as the query parameter `marker`, never as text."""
    if threshold <= 0:
        return f"{cost} > 0"
    return f"{cost} {'>=' if rule == 'at-or-above' else '>'} {marker}"


def group_keys(has_region: bool) -> list[str]:
    """Every cohort key the data hold: the checks need them all, cells use the spec's."""
    return ["year", "age_band", "sex", "residence", "special_group",
            *(["region"] if has_region else [])]


def annual_cost(dialect: Dialect) -> str:
    """A member-year's annual cost from its claims; NaN when a claim's cost is missing,
    negative or above the ceiling, or their sum is, so its cell's cost turns NaN: the
    claims check costs no aggregate over members. Each cost being at most the ceiling
    (<= 1e15), no sum can overflow."""
    ceiling = dialect.p("max_cost")
    return f"""CASE WHEN COUNT(eligible_cost) < COUNT(*) OR MIN(eligible_cost) < 0
                      OR MAX(eligible_cost) > {ceiling} OR SUM(eligible_cost) > {ceiling}
                      THEN CAST('NaN' AS DOUBLE)
                 ELSE SUM(eligible_cost) END"""


def cells_select(source: str, spec: CohortSpec, has_region: bool, reported_above: float,
                 summary: bool, dialect: Dialect, ids_checked: bool = False,
                 values_checked: bool = False, cost: str = "a.cost",
                 detail: bool = True, fixed: tuple[str, ...] = (), rule: str = "above",
                 count: str = "a.n") -> str:
    """The grouped SELECT over `source`, which yields member rows `m` beside their annual
    cost `a.cost` (NULL for a member-year without claims).

    Every aggregate here runs over every member row, so the checks are folded into few;
    a claim without its member-year lands in the group whose keys are all NULL, as does a
    member row with a missing key. ids_checked: member ids were checked outside;
    values_checked: so were exposure and age (Parquet statistics; a NaN exposure still
    shows as a NaN cell exposure). cost: the annual cost column; detail=False: the
    claimants' rows are collected outside (and counted there); fixed: keys constant in
    the source (a partition's year and region), left out of the grouping and added to the
    result by the caller.
    """
    # an age below 0 falls in some band here, but such a row is refused anyway (bad)
    band = (f"LEAST({dialect.int_div.format(a='m.age', b=spec.band_width)}, "
            f"{spec.n_bands - 1}) * {spec.band_width}")
    keys = [f"{band} AS age_band" if k == "age_band" else f"m.{k}"
            for k in group_keys(has_region) if k not in fixed]
    claimant = reported_sql(cost, reported_above, rule, dialect.p("reported_above"))
    extra = f", SUM({count}) FILTER (WHERE {claimant}) AS claims"
    if reported_above > 0:  # left truncation: nothing may be reported below it
        extra += f", COUNT(*) FILTER (WHERE {cost} > 0 AND NOT ({claimant})) AS low"
    if summary:  # claimants' costs leave the engine only as counts and sums per bucket
        keys.append(f"CASE WHEN {claimant} AND NOT isnan({cost}) "
                    f"THEN {bucket_sql(cost)} END AS bucket")
    elif detail:
        extra += (f", {dialect.collect.format(age='m.age', cost=cost)} "
                  f"FILTER (WHERE {claimant}) AS detail")
    no_id = "" if ids_checked else "m.member_id IS NULL OR "
    bad = "0" if values_checked else f"""COUNT(*) FILTER (WHERE {no_id}m.exposure IS NULL
                OR NOT (m.exposure > 0 AND m.exposure <= 1)
                OR m.age < 0 OR m.age > 120)"""
    return f"""SELECT {", ".join(keys)}, SUM(m.exposure) AS exposure, COUNT(*) AS insured,
            {bad} AS bad, SUM({cost}) AS cost{extra}
        FROM {source}
        GROUP BY {", ".join(str(i) for i in range(1, len(keys) + 1))}"""


def cells_sql(members: str, claims: str, spec: CohortSpec, has_region: bool,
              reported_above: float, summary: bool, dialect: Dialect,
              rule: str = "above") -> str:
    """The one-pass query over a members SELECT and a claims SELECT (see members_view):
    members FULL JOIN each member-year's annual cost and claim count, grouped
    (cells_select)."""
    return f"""WITH m AS ({members}), c AS ({claims}),
        a AS (SELECT member_id, year, {annual_cost(dialect)} AS cost,
                     COUNT(*) FILTER (WHERE eligible_cost > 0) AS n FROM c GROUP BY 1, 2)
        {cells_select("m FULL JOIN a ON a.member_id = m.member_id AND a.year = m.year",
                      spec, has_region, reported_above, summary, dialect, rule=rule)}"""


def _check(frame: pd.DataFrame, keys: list[str], nan_cost: bool) -> None:
    """The data contract from per-cell aggregates (sex and residence coded, unknown
    values as -1); any doubt -> NeedsDetail."""
    if frame.empty:
        raise NeedsDetail("no members")
    if frame[keys].isna().any().any():
        raise NeedsDetail("a claim without member-year or a member without a key")
    ok = (
        not frame["bad"].any() and not frame["exposure"].isna().any()
        and (frame[["sex", "residence"]] >= 0).all().all()
    )
    if not ok:
        raise NeedsDetail("members")
    if nan_cost or ("low" in frame and frame["low"].any()):
        raise NeedsDetail("claims")


def cells_from_results(parts: list[pa.Table], spec: CohortSpec, reported_above: float,
                       has_region: bool, summary: bool = False,
                       claimants: pa.Table | None = None, rule: str = "above") -> Cells:
    """Cells from the results of `cells_sql` on one or several disjoint parts of the data.
    claimants: their rows when collected outside the query (keys coded, age, cost)."""
    if "region" in spec.keys and not has_region:
        raise NeedsDetail("no region column")
    result = pa.concat_tables(parts)
    frame = result.drop_columns(["detail"] if "detail" in result.column_names else []
                                ).to_pandas()
    for key, allowed in (("sex", SEXES), ("residence", RESIDENCES)):
        if not pd.api.types.is_integer_dtype(frame[key]):  # already coded outside
            code = frame[key].map({v: i for i, v in enumerate(allowed)})
            frame[key] = code.fillna(-1).astype("int8")  # -1: not an allowed value
    keys = group_keys(has_region)
    # NULL cost: a cell without claims; NaN: a member-year with a damaged claim
    _check(frame, keys, bool(pc.any(pc.is_nan(result.column("cost"))).as_py()))
    frame["cost"] = frame["cost"].fillna(0.0)  # cells without any claim
    frame["claims"] = frame["claims"].fillna(0).astype("int64")
    if summary:
        is_claimant = frame["bucket"].notna()
        frame["claimants"] = frame["insured"].where(is_claimant, 0)
    elif claimants is None:
        lengths = pc.list_value_length(result.column("detail")).fill_null(0)
        frame["claimants"] = lengths.to_numpy()
    else:
        frame["claimants"] = 0  # counted from their rows below
    if not frame["claimants"].any() and (claimants is None or not claimants.num_rows):
        raise NeedsDetail("no claimants")
    cell_keys = ["year", *spec.columns]
    table = frame.groupby(cell_keys, as_index=False)[["exposure", "insured", "claimants",
                                                       "cost", "claims"]].sum()
    if claimants is not None and not summary:
        counts = claimants.group_by(cell_keys).aggregate([([], "count_all")]).to_pandas()
        table = table.merge(counts, on=cell_keys, how="left", validate="one_to_one")
        table["claimants"] = table.pop("count_all").fillna(0).astype("int64")
    if summary:
        claimants = _expand_summary(frame, cell_keys, spec)
    elif claimants is None:
        claimants = _unlist(frame[keys], result.column("detail"))
    else:
        claimants = claimants.to_pandas()
    return _typed(table, claimants, spec, reported_above, rule)


def _unlist(keys: pd.DataFrame, detail: pa.ChunkedArray) -> pd.DataFrame:
    """One row per claimant: the keys of its cell and its age and annual cost."""
    lists = detail.combine_chunks() if detail.num_chunks != 1 else detail.chunk(0)
    flat = pc.list_flatten(lists)
    out = keys.iloc[pc.list_parent_indices(lists).to_numpy()].reset_index(drop=True)
    out["age"] = flat.field("age").to_numpy()
    out["cost"] = flat.field("cost").to_numpy()
    return out


def _expand_summary(frame: pd.DataFrame, cell_keys: list[str],
                    spec: CohortSpec) -> pd.DataFrame:
    """Claimant rows rebuilt from bucket counts and sums (forecasting.data.summary)."""
    if "special_group" not in spec.keys:
        raise Unsupported("a severity summary needs special_group among the cohort keys")
    found = frame[frame["bucket"].notna()].groupby([*cell_keys, "bucket"], as_index=False)
    found = found.agg(n=("claimants", "sum"), total=("cost", "sum"))
    found["bucket"] = found["bucket"].astype("int64")
    return SeveritySummary(found, tuple(cell_keys)).claimants(spec.band_width)


def _typed(table: pd.DataFrame, claimants: pd.DataFrame, spec: CohortSpec,
           reported_above: float, rule: str) -> Cells:
    """Typed columns in the pandas engine's layout and row order."""
    cat = {"sex": SEXES, "residence": RESIDENCES}
    for frame in (table, claimants):
        frame["year"] = frame["year"].astype("int64")
        frame["age_band"] = frame["age_band"].astype("int64")
        for key in ("special_group", *spec.keys):
            if key not in frame:
                continue
            if key == "special_group":
                frame[key] = frame[key].astype(bool)
            elif key == "region":
                frame[key] = frame[key].astype("str")
            else:
                frame[key] = pd.Categorical.from_codes(frame[key].astype("int8"), cat[key])
    keys = ["year", *spec.columns]
    table = table.sort_values(keys).reset_index(drop=True)
    table["insured"] = table["insured"].astype("int64")
    table["claimants"] = table["claimants"].astype("int64")
    table["claims"] = table["claims"].astype("int64")
    for name in ("exposure", "cost"):
        table[name] = table[name].astype("float64")
    claimants["age"] = claimants["age"].astype("int64")
    claimants["cost"] = claimants["cost"].astype("float64")
    claimants = claimants[claimant_columns(spec)].reset_index(drop=True)
    return Cells(table, claimants, spec, float(reported_above), rule)

