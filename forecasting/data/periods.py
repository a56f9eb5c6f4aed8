"""Policy periods split into calendar years.

Health portfolios often hold one row per policy: a period (start, last day covered) that
may run over several calendar years. The models count member-years, so each period is
cut at every 1 January: the exposure in year y is the number of days of the period that
fall in y divided by the days of y, and the age in y is the age at the period's start plus
(y - the start's year). Two periods of one member in the same year (a renewal on
1 July) add up to one member-year; periods that overlap (more than a whole year of
exposure in a calendar year) are an error naming the rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

OVERLAP_TOLERANCE = 1e-9  # exposures are ratios of whole days: sums of them round


def _year_start(year: np.ndarray) -> np.ndarray:
    return (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")


def split_periods(frame: pd.DataFrame, start: np.ndarray, end: np.ndarray,
                  where_rows: Callable[[np.ndarray, str, str], None]) -> pd.DataFrame:
    """Member-years of policy rows: `frame` holds one row per policy (member_id, year of
    the start, age at the start, keys, special_group); `start` and `end` its first and
    last day covered (datetime64[D]). `where_rows(rows, expected, got)` raises naming the
    policy rows at fault."""
    first = start.astype("datetime64[Y]").astype("int64") + 1970
    last = end.astype("datetime64[Y]").astype("int64") + 1970
    n_years = last - first + 1
    origin = np.repeat(np.arange(len(frame)), n_years)
    year = first[origin] + (np.arange(len(origin)) - np.repeat(np.cumsum(n_years) - n_years,
                                                               n_years))
    begin = np.maximum(start[origin], _year_start(year))
    stop = np.minimum(end[origin] + 1, _year_start(year + 1))
    days = (_year_start(year + 1) - _year_start(year)).astype("int64")
    out = frame.iloc[origin].reset_index(drop=True)
    out["year"] = year
    out["age"] = out["age"].to_numpy() + (year - first[origin])
    out["exposure"] = (stop - begin).astype("int64") / days
    return _combine(out, origin, where_rows)


def _combine(rows: pd.DataFrame, origin: np.ndarray,
             where_rows: Callable[[np.ndarray, str, str], None]) -> pd.DataFrame:
    """One row per member-year: exposures of a member's periods within a year added, the
    other columns from the first of them; more than a year of exposure is an overlap."""
    key = ["member_id", "year"]
    repeated = rows.duplicated(key, keep=False).to_numpy()
    if not repeated.any():
        return rows
    total = rows.groupby(key, sort=False)["exposure"].transform("sum").to_numpy()
    over = repeated & (total > 1 + OVERLAP_TOLERANCE)
    if over.any():
        first = rows.loc[over].iloc[0]
        where_rows(np.unique(origin[over]), "policy periods of one member that do not "
                   "overlap", f"member {first['member_id']} covered {total[over][0]:.3g} "
                   f"years in {first['year']}")
    rows = rows.assign(exposure=np.minimum(total, 1.0))
    return rows[~rows.duplicated(key, keep="first")].reset_index(drop=True)
