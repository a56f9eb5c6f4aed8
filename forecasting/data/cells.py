"""Member-years and claims -> cells (year x cohort), keeping each claimant's annual cost.

The models are fitted on cells: exposure, insured, claimants and cost are sufficient
statistics for a Poisson frequency GLM, so nothing is lost by aggregating. Severity needs
the distribution, so every claimant's annual eligible cost is kept beside the cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data.cohorts import RESIDENCES, SEXES, CohortSpec
from forecasting.data.io import where
from forecasting.errors import InputError

CELL_STATS = ("exposure", "insured", "claimants", "cost")
ID_COLUMNS = "columns 'member_id','year'"


@dataclass(frozen=True)
class Cells:
    """Cells of several years and the claimants behind them.

    table: one row per non-empty (year, cohort): exposure (member-years), insured (head
    count), claimants (member-years with annual eligible cost > reported_above), cost (CNY).
    claimants: one row per claimant: year, cohort columns, age, special_group, cost (CNY).
    reported_above: costs at or below this were not reported (left truncation), CNY.
    """

    table: pd.DataFrame
    claimants: pd.DataFrame
    spec: CohortSpec
    reported_above: float = 0.0

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.table["year"].unique())

    def until(self, year: int) -> Cells:
        """The cells of the years up to and including `year` (a training window)."""
        t, c = self.table["year"] <= year, self.claimants["year"] <= year
        return Cells(self.table[t].reset_index(drop=True),
                     self.claimants[c].reset_index(drop=True), self.spec, self.reported_above)

    def year(self, year: int) -> Cells:
        """The cells of one year."""
        return Cells(
            self.table[self.table["year"] == year].reset_index(drop=True),
            self.claimants[self.claimants["year"] == year].reset_index(drop=True),
            self.spec,
            self.reported_above,
        )


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
) -> np.ndarray:
    """Sum claims to each member-year's annual eligible cost (CNY), aligned with `members`.

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
    annual = np.bincount(order[pos], weights=claims["eligible_cost"].to_numpy(),
                         minlength=len(members))
    _check_ceiling(annual, order[pos], claims, claims_path, max_cost)
    return annual


def _check_ceiling(annual: np.ndarray, member_of_claim: np.ndarray, claims: pd.DataFrame,
                   claims_path: Path | str, max_cost: float) -> None:
    """No member-year's claims add up to more than `max_cost` (CNY)."""
    over = np.flatnonzero(annual > max_cost)
    if over.size:
        rows = np.flatnonzero(member_of_claim == over[0])
        first = claims.iloc[rows[0]]
        raise InputError(
            f"{where(claims_path, rows, ID_COLUMNS)}: expected an annual eligible cost of "
            f"at most {max_cost:g} CNY per member-year (--max-cost); got {annual[over[0]]:g} "
            f"for member {first['member_id']} in {first['year']}")


def _key_codes(spec: CohortSpec, members: pd.DataFrame
               ) -> tuple[np.ndarray, list[int], np.ndarray]:
    """A single integer code per member row for (year, cohort), the radix of each part, and
    the region names (sorted) when region is a key."""
    years = members["year"].to_numpy()
    parts = [(years - years.min(), int(years.max() - years.min() + 1)),
             (spec.band(members["age"].to_numpy()) // spec.band_width, spec.n_bands)]
    regions = np.array([], dtype=object)
    for key in spec.keys:
        values = members[key]
        if key == "region":
            regions, codes = np.unique(values.to_numpy(dtype=str), return_inverse=True)
            parts.append((codes.astype("int64"), len(regions)))
            continue
        codes = values.cat.codes.to_numpy() if key != "special_group" else values.to_numpy()
        parts.append((codes.astype("int64"), 2))
    code = np.zeros(len(members), dtype="int64")
    for values, radix in parts:
        code = code * radix + values
    return code, [r for _, r in parts], regions


def _decode(spec: CohortSpec, code: np.ndarray, radices: list[int], year0: int,
            regions: np.ndarray) -> pd.DataFrame:
    digits = []
    for radix in reversed(radices):
        digits.append(code % radix)
        code = code // radix
    digits.reverse()
    out = {"year": digits[0] + year0, "age_band": digits[1] * spec.band_width}
    labels = {"sex": SEXES, "residence": RESIDENCES}
    for key, values in zip(spec.keys, digits[2:], strict=True):
        if key == "special_group":
            out[key] = values.astype(bool)
        elif key == "region":
            out[key] = pd.array(regions[values], dtype="str")
        else:
            out[key] = pd.Categorical.from_codes(values, labels[key])
    return pd.DataFrame(out)


def aggregate(
    members: pd.DataFrame,
    annual: np.ndarray,
    spec: CohortSpec | None = None,
    reported_above: float = 0.0,
) -> Cells:
    """Cells from validated members and their annual eligible costs (see `annual_costs`)."""
    spec = spec or CohortSpec()
    code, radices, regions = _key_codes(spec, members)
    year0 = int(members["year"].min())
    size = int(np.prod(radices))
    is_claimant = annual > reported_above
    stats = {
        "exposure": np.bincount(code, weights=members["exposure"].to_numpy(), minlength=size),
        "insured": np.bincount(code, minlength=size),
        "claimants": np.bincount(code[is_claimant], minlength=size),
        "cost": np.bincount(code, weights=annual, minlength=size),
    }
    present = np.flatnonzero(stats["insured"])
    table = _decode(spec, present, radices, year0, regions)
    for name in CELL_STATS:
        table[name] = stats[name][present]
    rows = np.flatnonzero(is_claimant)
    picked = members.iloc[rows]
    claimants = _decode(spec, code[rows], radices, year0, regions)
    claimants["age"] = picked["age"].to_numpy()
    claimants["special_group"] = picked["special_group"].to_numpy()
    claimants["cost"] = annual[rows]
    return Cells(table, claimants[claimant_columns(spec)], spec, float(reported_above))
