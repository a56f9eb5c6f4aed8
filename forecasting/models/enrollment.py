"""Enrollment: insured head count and exposure per cohort for the forecast year.

People age one year: a 1/band_width share of each age band moves up a band (the last band
keeps its members, the first is refilled at the same rate). The overall insured count then
follows its recent log-linear trend, because enrolment is voluntary and in L city has
fallen every year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.data.cohorts import CohortSpec
from forecasting.models.uncertainty import prediction_factor


def insured_trend(table: pd.DataFrame) -> float:
    """Average yearly log growth of the total insured head count (0 with one year)."""
    totals = table.groupby("year")["insured"].sum().sort_index()
    if len(totals) < 2:
        return 0.0
    years = totals.index.to_numpy(dtype="float64")
    return float(np.polyfit(years, np.log(totals.to_numpy(dtype="float64")), 1)[0])


def insured_sd(table: pd.DataFrame, year: int) -> float:
    """Standard deviation of log(insured total) of `year` around its projection: the
    residual spread of the log-linear trend, widened as a trend's prediction interval
    (forecasting.models.claims.prediction_factor); with two years the one observed change
    stands for its own uncertainty; with one year nothing is known (0)."""
    totals = table.groupby("year")["insured"].sum().sort_index()
    years = totals.index.to_numpy(dtype="float64")
    logs = np.log(totals.to_numpy(dtype="float64"))
    if len(totals) < 2:
        return 0.0
    if len(totals) == 2:
        return float(abs(logs[1] - logs[0]))
    slope, level = np.polyfit(years, logs, 1)
    resid = logs - (level + slope * years)
    sd = float(np.sqrt((resid**2).sum() / (len(logs) - 2)))
    return sd * prediction_factor(years, year)


def age_one_year(cur: pd.DataFrame, spec: CohortSpec) -> pd.DataFrame:
    """Cohorts a year older: a band_width-th of each age band moves up one band, band 0 is
    refilled by births, the open last band keeps its members (insured and exposure per
    head as they were; other columns of `cur` are dropped)."""
    share = 1.0 / spec.band_width
    out = []
    keys = list(spec.keys)
    for _, g in cur.groupby(keys, observed=True, sort=False) if keys else [(None, cur)]:
        g = g.sort_values("age_band")
        ins, exp_ = g["insured"].to_numpy(float), g["exposure"].to_numpy(float)
        per_head = np.divide(exp_, ins, out=np.ones_like(ins), where=ins > 0)
        moved = ins * share
        nxt = ins - moved + np.r_[moved[0], moved[:-1]]  # band 0 refilled by births
        nxt[-1] += moved[-1]                              # the open band keeps its members
        out.append(g[spec.columns].assign(insured=nxt, exposure=nxt * per_head))
    return pd.concat(out, ignore_index=True)


def project_enrollment(table: pd.DataFrame, spec: CohortSpec, year: int) -> pd.DataFrame:
    """Cohorts of `year`: keys, insured (expected head count) and exposure (member-years).

    `table` holds the cells of the years before `year`; the last of them is aged forward.
    """
    last = int(table["year"].max())
    if year <= last:
        raise ValueError(f"forecast year {year} must come after the data's last year {last}")
    grid = _full_grid(table, spec)
    cur = grid.merge(table[table["year"] == last].drop(columns="year"), how="left",
                     on=spec.columns).fillna({"insured": 0, "exposure": 0})
    frame = age_one_year(cur, spec)
    # ageing and births set the mix; the enrolment trend sets the total
    total = table.loc[table["year"] == last, "insured"].sum()
    growth = total * np.exp(insured_trend(table) * (year - last)) / frame["insured"].sum()
    frame["insured"] *= growth
    frame["exposure"] *= growth
    frame.insert(0, "year", year)
    return frame.sort_values(spec.columns).reset_index(drop=True)


def _full_grid(table: pd.DataFrame, spec: CohortSpec) -> pd.DataFrame:
    """Every cohort seen in any year, so a band empty last year can still fill."""
    return table[spec.columns].drop_duplicates().reset_index(drop=True)
