"""Claims development: completing the years not all settled on the as-of date.

A December stay is settled in February or later, so on a negotiation date early in the
year the last year looks cheap. The settled cost and the claimants first reported are laid
out as cumulative lag triangles (service year x months since its start, evaluated at
month-ends aligned on the as-of date) and completed with chainladder-python: the chain
ladder with Mack's standard error (process and parameter), or Bornhuetter-Ferguson with a
prior from the earlier years' cost per member-year, trended. Each year's cells are then
scaled by its completion factors (claimants by the count factor, costs by the cost factor)
and the uncertainty of the latest factor widens the forecast's scenarios.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.config import Development
from forecasting.data.cells import Cells
from forecasting.data.dataset import Dataset, load_data
from forecasting.errors import InputError

METHODS = ("chain-ladder", "bornhuetter-ferguson")


@dataclass(frozen=True)
class YearCompletion:
    """One service year completed: reported (settled by the as-of date) and completed
    eligible cost (money units of the data) with its interval at `level`, the claimants
    likewise, and the sd of log(completed cost), the spread the forecast inherits."""

    year: int
    reported: float
    completed: float
    low: float
    high: float
    log_sd: float
    claimants_reported: float
    claimants_completed: float

    @property
    def factor(self) -> float:
        return self.completed / self.reported if self.reported > 0 else 1.0

    @property
    def claimant_factor(self) -> float:
        return (self.claimants_completed / self.claimants_reported
                if self.claimants_reported > 0 else 1.0)


@dataclass(frozen=True)
class Completion:
    """Every year of an as-of view completed by one method."""

    as_of: datetime.date
    method: str
    level: float
    years: tuple[YearCompletion, ...]

    def to_dict(self) -> dict:
        """Plain data for provenance, the report and MLflow."""
        return {"as_of": self.as_of.isoformat(), "method": self.method, "level": self.level,
                "years": [{**asdict(y), "factor": y.factor,
                           "claimant_factor": y.claimant_factor} for y in self.years]}


_METHOD_NAMES = {"chain-ladder": "chain ladder",
                 "bornhuetter-ferguson": "Bornhuetter-Ferguson"}


def statement(cells: Cells) -> dict | None:
    """The latest year's completion as the report and the forecast state it: as-of date,
    year, reported and completed cost, factor, interval (None for complete data)."""
    if not cells.completion:
        return None
    done = cells.completion
    y = max(done["years"], key=lambda y: y["year"])
    return {"as_of": done["as_of"], "year": y["year"], "reported": y["reported"],
            "completed": y["completed"], "factor": y["factor"], "low": y["low"],
            "high": y["high"], "method": _METHOD_NAMES[done["method"]],
            "level": done["level"]}


def aligned_months(settled: pd.Series, as_of: datetime.date) -> pd.Series:
    """Settlement dates moved by the days from `as_of` to its month's end, so that the
    monthly evaluations of the triangle fall on the as-of date and on whole months
    before it (every origin is then seen at the same calendar points)."""
    as_of = pd.Timestamp(as_of)
    return pd.to_datetime(settled) + (as_of + pd.offsets.MonthEnd(0) - as_of)


def triangles(lags: pd.DataFrame, as_of: datetime.date):
    """Cumulative lag triangles of settled cost and claimants first reported, origin =
    service year, monthly development (chainladder Triangle with columns cost,
    claimants)."""
    import chainladder as cl

    frame = pd.DataFrame({"origin": pd.to_datetime(lags["year"].astype(str) + "-01-01"),
                          "settled": aligned_months(lags["settled"], as_of),
                          "cost": lags["cost"].astype(float),
                          "claimants": lags["claimants"].astype(float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tri = cl.Triangle(frame, origin="origin", development="settled",
                          columns=["cost", "claimants"], cumulative=False).incr_to_cum()
    years = sorted(int(y) for y in lags["year"].unique())
    # the library lays origins out up to the valuation date; keep the service years
    return tri[tri.origin <= str(years[-1])]


def _mack(tri) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest, chain-ladder ultimate and Mack standard error per origin (0 where the
    triangle says the year is complete)."""
    import chainladder as cl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mack = cl.MackChainladder().fit(tri)
    latest = tri.latest_diagonal.values[0, 0, :, -1]
    ultimate = mack.ultimate_.values[0, 0, :, -1]
    se = np.nan_to_num(mack.mack_std_err_.values[0, 0, :, -1])
    return latest, ultimate, se


def _bornhuetter_ferguson(tri, prior: np.ndarray) -> np.ndarray:
    """BF ultimates per origin given prior ultimates (same money units)."""
    import chainladder as cl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weight = cl.Chainladder().fit(tri).ultimate_
        weight.values = np.asarray(prior, dtype=float).reshape(weight.values.shape)
        bf = cl.BornhuetterFerguson(apriori=1.0).fit(tri, sample_weight=weight)
    return bf.ultimate_.values[0, 0, :, -1]


def trend_prior(ultimate: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Prior ultimates: each year's exposure times the cost per member-year the earlier
    years' chain-ladder ultimates point to (log-linear trend over them; their level when
    only one; the year's own chain ladder when none)."""
    rate = ultimate / exposure
    prior = ultimate.astype(float).copy()
    for i in range(1, len(rate)):
        if i == 1:
            prior[i] = exposure[i] * rate[0]
        else:
            slope, intercept = np.polyfit(np.arange(i, dtype=float), np.log(rate[:i]), 1)
            prior[i] = exposure[i] * np.exp(intercept + slope * i)
    return prior


def complete_column(tri, method: str, exposure: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest, completed ultimate and its standard error per origin, for one column of
    the triangles. Bornhuetter-Ferguson's error is Mack's scaled by the ratio of the two
    methods' unsettled amounts (its process error grows with what is still to come)."""
    latest, ultimate, se = _mack(tri)
    if method == "chain-ladder":
        return latest, ultimate, se
    bf = _bornhuetter_ferguson(tri, trend_prior(ultimate, exposure))
    to_come_cl, to_come_bf = ultimate - latest, bf - latest
    ratio = np.divide(to_come_bf, to_come_cl, out=np.ones_like(bf), where=to_come_cl > 0)
    return latest, bf, se * np.abs(ratio)


def lognormal_interval(mean: float, se: float, level: float) -> tuple[float, float, float]:
    """The `level` interval and log sd of a lognormal with this mean and sd: it holds the
    mean, and the amount still to come cannot make the year negative."""
    if mean <= 0 or se <= 0:
        return float(mean), float(mean), 0.0
    s2 = np.log1p((se / mean) ** 2)
    mu = np.log(mean) - s2 / 2
    z = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
    low, high = np.exp(mu + np.sqrt(s2) * z)
    return float(low), float(high), float(np.sqrt(s2))


def complete(cells: Cells, options: Development | None = None) -> Completion:
    """Every year of an as-of view completed by `options.method` (default: the chain
    ladder; InputError when the data hold no settlement history to build triangles from)."""
    options = options or Development()
    if cells.lags is None or cells.as_of is None:
        raise InputError("claims development needs the data as of a date (--as-of) with "
                         "settlement dates")
    years = sorted(int(y) for y in cells.lags["year"].unique())
    if len(years) < 2:
        raise InputError(f"claims development needs at least two service years with "
                         f"settlements by {cells.as_of}; got {years}")
    tri = triangles(cells.lags, cells.as_of)
    exposure = cells.table.groupby("year")["exposure"].sum().reindex(years).to_numpy(float)
    cost = complete_column(tri["cost"], options.method, exposure)
    count = complete_column(tri["claimants"], options.method, exposure)
    done = []
    for i, year in enumerate(years):
        low, high, log_sd = lognormal_interval(cost[1][i], cost[2][i], options.level)
        done.append(YearCompletion(year, float(cost[0][i]), float(cost[1][i]), low, high,
                                   log_sd, float(count[0][i]), float(count[1][i])))
    return Completion(cells.as_of, options.method, options.level, tuple(done))


def completed_cells(cells: Cells, completion: Completion) -> Cells:
    """Cells with each year scaled to its completed ultimate: claimants (and claim
    counts) by the claimant factor, cost by the cost factor, each claimant's annual cost
    by their ratio (the mean cost of a claimant once all is settled)."""
    factors = pd.DataFrame([(y.year, y.claimant_factor, y.factor) for y in completion.years],
                           columns=["year", "n", "c"]).set_index("year")

    def scaled(frame: pd.DataFrame | None, per_claimant: bool) -> pd.DataFrame | None:
        if frame is None:
            return None
        f = factors.reindex(frame["year"]).fillna(1.0)
        n, c = f["n"].to_numpy(), f["c"].to_numpy()
        out = frame.copy()
        if per_claimant:
            out["cost"] = out["cost"].to_numpy() * c / n
            return out
        for column in ("claimants", "claims"):
            if column in out:
                out[column] = out[column].to_numpy(float) * n
        out["cost"] = out["cost"].to_numpy() * c
        return out

    return replace(cells, table=scaled(cells.table, False),
                   claimants=scaled(cells.claimants, True),
                   by_age=scaled(cells.by_age, False), completion=completion.to_dict())


def developed(ds: Dataset) -> Dataset:
    """The dataset with its cells completed when they are an as-of view of at least two
    service years (by the project's [development] settings), as it is otherwise."""
    cells = ds.cells
    if cells.lags is None or cells.as_of is None or cells.completion is not None:
        return ds
    if cells.lags["year"].nunique() < 2:  # one year: no development to learn from
        return ds
    return replace(ds, cells=completed_cells(cells, complete(cells, ds.config.development)))


def trend_leverage(years, year: int) -> float:
    """How much a shift in the log level of the latest fitted year moves the log level
    projected to `year` by a linear trend fitted over `years` (its hat value)."""
    t = np.asarray(sorted(set(int(y) for y in years)), dtype=float)
    if len(t) < 2:
        return 1.0
    centred = t - t.mean()
    return float(1 / len(t) + centred[-1] * (year - t.mean()) / (centred**2).sum())


def completion_sd(cells: Cells, year: int) -> float:
    """The spread the completion adds to the log cost level of `year`'s forecast: the
    latest completed year's log sd times its leverage on the trend (0 for complete data)."""
    if not cells.completion:
        return 0.0
    latest = max(cells.completion["years"], key=lambda y: y["year"])
    return float(latest["log_sd"]) * abs(trend_leverage(cells.table["year"].unique(), year))


def as_known(ds: Dataset) -> Callable[[int], Cells]:
    """For an as-of dataset, the cells a negotiator had for year t: the data as of t's
    negotiation date (never after the dataset's own), the years before t, completed. Each
    year's view is read once."""
    views: dict[int, Cells] = {}

    def known(year: int) -> Cells:
        if year not in views:
            date = min(ds.config.development.negotiation(year), ds.cells.as_of)
            view = load_data(ds.path, replace(ds.options, as_of=date), ds.config)
            views[year] = developed(view).cells.until(year - 1)
        return views[year]

    return known
