"""Member-years and claims -> cells (year x cohort), keeping each claimant's annual cost.

The models are fitted on cells: exposure, insured, claimants and cost are sufficient
statistics for a Poisson frequency GLM, so nothing is lost by aggregating. Severity needs
the distribution, so every claimant's annual eligible cost is kept beside the cells.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data.cohorts import FIXED_LEVELS, CohortSpec
from forecasting.data.io import where
from forecasting.errors import InputError

CELL_STATS = ("exposure", "insured", "claimants", "cost")
ID_COLUMNS = "columns 'member_id','year'"
THRESHOLD_RULES = ("above", "at-or-above")


def is_reported(cost: np.ndarray, threshold: float, rule: str = "above") -> np.ndarray:
    """Which annual costs make a claimant: > 0 without a threshold; with one, > threshold
    (rule "above") or >= threshold (rule "at-or-above", how many insurers report)."""
    cost = np.asarray(cost)
    if threshold <= 0:
        return cost > 0
    return cost >= threshold if rule == "at-or-above" else cost > threshold


@dataclass(frozen=True)
class Cells:
    """Cells of several years and the claimants behind them.

    table: one row per non-empty (year, cohort): exposure (member-years), insured (head
    count), claimants (member-years whose annual eligible cost is reported, see
    `is_reported`), cost (money units of the data) and, when the engine counted them,
    claims (claim rows with a cost > 0 of those claimants).
    claimants: one row per claimant: year, cohort columns, age, special_group, cost.
    reported_above: the reporting threshold (0: every cost > 0 is reported); costs below it
    (or at it, with rule "above") were not reported: left truncation.
    rule: "above" or "at-or-above" (how the threshold reads).
    by_age: the same cells at single years of age (age_band = age), when the loader made
    them: for any model of age, keys and year they hold what the member rows hold.
    as_of: the date the data are known on (None: complete), and `lags` the settled cost
    and claimants by (year, settled date) behind the triangles (`forecasting.data.lags`).
    completion: per year, the claims development that completed these cells (None: as
    reported; `forecasting.models.development`).
    """

    table: pd.DataFrame
    claimants: pd.DataFrame
    spec: CohortSpec
    reported_above: float = 0.0
    rule: str = "above"
    by_age: pd.DataFrame | None = None
    as_of: datetime.date | None = None
    lags: pd.DataFrame | None = None
    completion: dict | None = None

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.table["year"].unique())

    @cached_property
    def _kept(self) -> dict:
        return {}

    def kept(self, key: tuple, make: Callable[[], object]):
        """make(), computed once for these cells: what every candidate of a training asks
        of the same cells (a backtest's training window and held-out year, the enrolment
        projected from them, their claimants by cohort). Cells are never changed once
        made, so what is kept stays true; callers that change what they get copy it."""
        if key not in self._kept:
            self._kept[key] = make()
        return self._kept[key]

    def _select(self, keep) -> Cells:
        """The cells of the years for which keep(years) holds."""
        def part(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            if frame is None:
                return None
            return frame[keep(frame["year"])].reset_index(drop=True)
        return replace(self, table=part(self.table), claimants=part(self.claimants),
                       by_age=part(self.by_age), lags=part(self.lags))

    def until(self, year: int) -> Cells:
        """The cells of the years up to and including `year` (a training window)."""
        return self.kept(("until", year), lambda: self._select(lambda y: y <= year))

    def year(self, year: int) -> Cells:
        """The cells of one year."""
        return self.kept(("year", year), lambda: self._select(lambda y: y == year))

    def coarsened(self, spec: CohortSpec) -> Cells:
        """These cells (made at single years of age) in the bands of `spec`, keeping the
        single-age table as `by_age`."""
        fine = self.table
        keys = ["year", *spec.columns]
        coarse = fine.assign(age_band=spec.band(fine["age_band"].to_numpy()))
        stats = [c for c in (*CELL_STATS, "claims") if c in fine]
        table = coarse.groupby(keys, observed=True, sort=True, as_index=False)[stats].sum()
        claimants = self.claimants.assign(age_band=spec.band(self.claimants["age"].to_numpy()))
        return replace(self, table=table, claimants=claimants, spec=spec, by_age=fine)


def completion_factors(completion: dict | None, frame: pd.DataFrame, name: str
                       ) -> np.ndarray:
    """Per row of `frame` (with year and the completion's group key), the factor `name`
    ("claimant_factor" or "factor", the cost's) by which claims development completed its
    year (and group) — see `Cells.completion`; 1 where nothing was completed."""
    if not completion:
        return np.ones(len(frame))
    key = completion["group_by"]
    rows = completion["groups"] if key else completion["years"]
    factors = pd.Series({(int(r["year"]), r["group"] if key else ""): r[name] for r in rows},
                        dtype=float)
    groups = frame[key].astype(str).to_numpy() if key else np.full(len(frame), "")
    at = pd.MultiIndex.from_arrays([frame["year"].to_numpy().astype(int), groups])
    return factors.reindex(at).fillna(1.0).to_numpy()


def claimant_columns(spec: CohortSpec) -> list[str]:
    """Column order of `Cells.claimants` (the same from every engine)."""
    extra = [] if "special_group" in spec.keys else ["special_group"]
    return ["year", *spec.columns, "age", *extra, "cost"]


def _member_year_keys(members: pd.DataFrame, claims: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """Integer keys identifying member-years in both tables (ids may be numbers or text)."""
    ids = np.concatenate([members["member_id"].to_numpy(), claims["member_id"].to_numpy()])
    if ids.dtype == object:
        codes = pd.factorize(ids)[0].astype("int64")
    else:
        codes = ids.astype("int64") - ids.min()
    years = np.concatenate([members["year"].to_numpy(), claims["year"].to_numpy()])
    span = int(years.max() - years.min() + 1)
    keys = codes * span + (years - years.min())
    n = len(members)
    return keys[:n], keys[n:]


def annual_costs(
    members: pd.DataFrame,
    claims: pd.DataFrame,
    members_path: Path | str = "members",
    claims_path: Path | str = "claims",
    max_cost: float = np.inf,
    counts: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Sum claims to each member-year's annual eligible cost, aligned with `members`; with
    counts=True also the number of its claim rows with a cost > 0.

    Raises if a member-year appears twice in members, a claim has no member-year, or a
    member-year's annual cost exceeds `max_cost`.
    """
    mkey, ckey = _member_year_keys(members, claims)
    order = np.argsort(mkey, kind="stable")
    sorted_keys = mkey[order]
    dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if dup.size:
        rows = np.sort(order[dup + 1])
        first = members.iloc[rows[0]]
        raise InputError(
            f"{where(members_path, rows, ID_COLUMNS)}: expected one row per "
            f"member-year; got member {first['member_id']} in {first['year']} more than once"
        )
    pos = np.minimum(np.searchsorted(sorted_keys, ckey), len(sorted_keys) - 1)
    missing = np.flatnonzero(sorted_keys[pos] != ckey)
    if missing.size:
        first = claims.iloc[missing[0]]
        raise InputError(
            f"{where(claims_path, missing, ID_COLUMNS)}: expected a "
            f"member-year listed in {members_path}; got member {first['member_id']} in "
            f"{first['year']}"
        )
    cost = claims["eligible_cost"].to_numpy()
    annual = np.bincount(order[pos], weights=cost, minlength=len(members))
    _check_ceiling(annual, order[pos], claims, claims_path, max_cost)
    if not counts:
        return annual
    return annual, np.bincount(order[pos[cost > 0]], minlength=len(members))


def _check_ceiling(annual: np.ndarray, member_of_claim: np.ndarray, claims: pd.DataFrame,
                   claims_path: Path | str, max_cost: float) -> None:
    """No member-year's claims add up to more than `max_cost` (the data's money unit)."""
    over = np.flatnonzero(annual > max_cost)
    if over.size:
        rows = np.flatnonzero(member_of_claim == over[0])
        first = claims.iloc[rows[0]]
        raise InputError(
            f"{where(claims_path, rows, ID_COLUMNS)}: expected an annual eligible cost of "
            f"at most {max_cost:g} per member-year in the data's money unit (--max-cost); "
            f"got {annual[over[0]]:g} "
            f"for member {first['member_id']} in {first['year']}")


def _codes(key: str, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of one key's values and the levels they index (sorted text, or the
    fixed vocabulary of sex and residence, or False/True)."""
    if key == "special_group":
        return values.to_numpy(dtype=bool).astype("int64"), np.array([False, True])
    if key in FIXED_LEVELS:
        return values.cat.codes.to_numpy().astype("int64"), np.array(FIXED_LEVELS[key])
    levels, codes = np.unique(values.to_numpy(dtype=str), return_inverse=True)
    return codes.astype("int64"), levels


def _key_codes(spec: CohortSpec, members: pd.DataFrame
               ) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
    """A single integer code per member row for (year, cohort), the radix of each part, and
    the levels of each key."""
    years = members["year"].to_numpy()
    parts = [(years - years.min(), int(years.max() - years.min() + 1)),
             (spec.band(members["age"].to_numpy()) // spec.band_width, spec.n_bands)]
    levels = []
    for key in spec.keys:
        codes, found = _codes(key, members[key])
        parts.append((codes, max(len(found), 1)))
        levels.append(found)
    code = np.zeros(len(members), dtype="int64")
    for values, radix in parts:
        code = code * radix + values
    return code, [r for _, r in parts], levels


def key_column(key: str, values: np.ndarray) -> object:
    """A key's column as every engine gives it: sex and residence categorical with their
    fixed vocabulary, special_group boolean, any other key text."""
    if key == "special_group":
        return np.asarray(values, dtype=bool)
    if key in FIXED_LEVELS:
        return pd.Categorical(values, categories=FIXED_LEVELS[key])
    return pd.array(np.asarray(values, dtype=str), dtype="str")


def _decode(spec: CohortSpec, code: np.ndarray, radices: list[int], year0: int,
            levels: list[np.ndarray]) -> pd.DataFrame:
    digits = []
    for radix in reversed(radices):
        digits.append(code % radix)
        code = code // radix
    digits.reverse()
    out = {"year": digits[0] + year0, "age_band": digits[1] * spec.band_width}
    for key, values, found in zip(spec.keys, digits[2:], levels, strict=True):
        out[key] = key_column(key, found[values])
    return pd.DataFrame(out)


def aggregate(
    members: pd.DataFrame,
    annual: np.ndarray,
    spec: CohortSpec | None = None,
    reported_above: float = 0.0,
    rule: str = "above",
    counts: np.ndarray | None = None,
) -> Cells:
    """Cells from validated members and their annual eligible costs (see `annual_costs`);
    `counts`, the claim rows of each member-year, add a `claims` column."""
    spec = spec or CohortSpec()
    code, radices, levels = _key_codes(spec, members)
    year0 = int(members["year"].min())
    size = int(np.prod(radices))
    claimant = is_reported(annual, reported_above, rule)
    stats = {
        "exposure": np.bincount(code, weights=members["exposure"].to_numpy(), minlength=size),
        "insured": np.bincount(code, minlength=size),
        "claimants": np.bincount(code[claimant], minlength=size),
        "cost": np.bincount(code, weights=annual, minlength=size),
    }
    if counts is not None:
        stats["claims"] = np.bincount(code[claimant], weights=counts[claimant],
                                      minlength=size).astype("int64")
    present = np.flatnonzero(stats["insured"])
    table = _decode(spec, present, radices, year0, levels)
    for name, values in stats.items():
        table[name] = values[present]
    rows = np.flatnonzero(claimant)
    picked = members.iloc[rows]
    claimants = _decode(spec, code[rows], radices, year0, levels)
    claimants["age"] = picked["age"].to_numpy()
    claimants["special_group"] = picked["special_group"].to_numpy()
    claimants["cost"] = annual[rows]
    return Cells(table, claimants[claimant_columns(spec)], spec, float(reported_above), rule)
