"""Settlement lags as known on a date: the incremental records a lag triangle is built from.

Negotiations happen early in a year, when the last year's claims are not all settled. The
models complete those years by claims development (`forecasting.models.development`);
this module turns the claims as known on the as-of date into what the triangles need: per
service year (origin) and settlement date, the eligible cost settled and the claimants
first reported (the member-years whose running total of settled cost first made them a
claimant, see `is_reported`).
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from forecasting.data.cells import is_reported


def lag_records(claims: pd.DataFrame, threshold: float = 0.0, rule: str = "above",
                keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per claim settled by the as-of date, from claims with member_id, year,
    eligible_cost, settled (datetime64) and the cohort `keys` of their member-year: year,
    settled, the keys, cost, claimants (1 on the settlement that first made the member-year
    a claimant) and before (the member-year's settled total before this claim): what every
    lag triangle is summed from, of the whole cost, of a layer of it, or of a group (money
    units of the data, member-years)."""
    c = claims.sort_values(["member_id", "year", "settled"], kind="stable")
    running = c.groupby(["member_id", "year"], sort=False)["eligible_cost"].cumsum()
    reported = is_reported(running.to_numpy(), threshold, rule)
    # a member-year counts once: on the settlement date its running total first reported
    first = reported & ~pd.Series(reported, index=c.index).groupby(
        [c["member_id"], c["year"]], sort=False).shift(fill_value=False).to_numpy()
    cost = c["eligible_cost"].to_numpy()
    return pd.DataFrame({"year": c["year"].to_numpy(), "settled": c["settled"].to_numpy(),
                         **{k: pd.Categorical(c[k].astype(str).to_numpy()) for k in keys},
                         "cost": cost, "claimants": first.astype("int64"),
                         "before": running.to_numpy() - cost})


def years_under_way(years: np.ndarray, as_of: datetime.date) -> np.ndarray:
    """Which calendar years had not ended by `as_of`: the year being negotiated, whose
    claims have barely begun, is forecast rather than fitted."""
    return np.asarray(years) >= (as_of.year if as_of.month < 12 or as_of.day < 31
                                 else as_of.year + 1)
