"""Claims development: lag triangles and the reserving methods that complete them.

A December stay is settled in February or later, so on a negotiation date early in the
year the last year looks cheap. The settled cost, the claimants first reported and the
cost inside each layer are laid out as cumulative lag triangles (service year x months
since its start, evaluated at month-ends aligned on the as-of date) and completed with
chainladder-python: the chain ladder with Mack's standard error (at least the
over-dispersed Poisson process error), or Bornhuetter-Ferguson, optionally with a
constant tail. What the completed years do to the cells is `forecasting.models.completion`.
"""

from __future__ import annotations

import datetime
import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.models.layer_map import layer_content


def aligned_months(settled: pd.Series, as_of: datetime.date) -> pd.Series:
    """Settlement dates moved by the days from `as_of` to its month's end, so that the
    monthly evaluations of the triangle fall on the as-of date and on whole months
    before it (every origin is then seen at the same calendar points)."""
    as_of = pd.Timestamp(as_of)
    return pd.to_datetime(settled) + (as_of + pd.offsets.MonthEnd(0) - as_of)


def triangles(lags: pd.DataFrame, as_of: datetime.date,
              columns: tuple[str, ...] = ("cost", "claimants")):
    """Cumulative lag triangles of `columns` of the lags (by default settled cost and
    claimants first reported), origin = service year, monthly development (a chainladder
    Triangle with those columns)."""
    import chainladder as cl

    sums = lags.groupby(["year", "settled"], as_index=False)[list(columns)].sum()
    frame = pd.DataFrame({"origin": pd.to_datetime(sums["year"].astype(str) + "-01-01"),
                          "settled": aligned_months(sums["settled"], as_of),
                          **{c: sums[c].astype(float) for c in columns}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tri = cl.Triangle(frame, origin="origin", development="settled",
                          columns=list(columns), cumulative=False).incr_to_cum()
    last = int(lags["year"].max())
    # the library lays origins out up to the valuation date; keep the service years
    return tri[tri.origin <= str(last)]


def _with_tail(tri, tail: float):
    """The triangle with its development factors, and `tail` from the oldest age seen to
    ultimate (1: the oldest year is taken as complete)."""
    import chainladder as cl

    dev = cl.Development().fit_transform(tri)
    return cl.TailConstant(tail=tail).fit_transform(dev) if tail > 1 else dev


def odp_scale(tri) -> float:
    """The over-dispersed Poisson scale of the triangle's incremental cells (Pearson,
    chainladder's bootstrap), NaN when it cannot be estimated."""
    import chainladder as cl

    try:
        with warnings.catch_warnings():  # the library's own arithmetic on empty cells
            warnings.simplefilter("ignore")
            scale = float(cl.BootstrapODPSample(n_sims=1, random_state=0).fit(tri).scale_)
    except (ValueError, ZeroDivisionError, IndexError, FloatingPointError):
        return float("nan")
    return scale if np.isfinite(scale) and scale > 0 else float("nan")


def _mack(tri, tail: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest, chain-ladder ultimate and its standard error per origin: Mack's, and at
    least the over-dispersed Poisson process error sqrt(scale x amount to come) — Mack's
    error rests on link ratios, and where a late period has one origin it can be ~0 while
    bills are still to come."""
    import chainladder as cl

    with warnings.catch_warnings():  # the library's own arithmetic on empty cells
        warnings.simplefilter("ignore")
        mack = cl.MackChainladder().fit(_with_tail(tri, tail))
        latest = np.nan_to_num(tri.latest_diagonal.values[0, 0, :, -1])
        ultimate = mack.ultimate_.values[0, 0, :, -1]
        se = np.nan_to_num(mack.mack_std_err_.values[0, 0, :, -1])
        scale = odp_scale(tri)
    to_come = np.maximum(np.nan_to_num(ultimate - latest), 0.0)
    if np.isfinite(scale):
        se = np.maximum(se, np.sqrt(scale * to_come))
    return latest, ultimate, se


def _bornhuetter_ferguson(tri, prior: np.ndarray, tail: float = 1.0) -> np.ndarray:
    """BF ultimates per origin given prior ultimates (same money units)."""
    import chainladder as cl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tri = _with_tail(tri, tail)
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


def complete_column(tri, method: str, exposure: np.ndarray | None = None,
                    latest_prior: float | None = None, tail: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latest, completed ultimate and its standard error per origin, for one column of
    the triangles. Bornhuetter-Ferguson's prior is `latest_prior` for the latest origin
    (ciplan's own forecast of it) and the trend of the earlier years otherwise; its error
    is Mack's scaled by the ratio of the two methods' unsettled amounts (the process error
    grows with what is still to come)."""
    latest, ultimate, se = _mack(tri, tail)
    if method == "chain-ladder":
        return latest, ultimate, se
    prior = trend_prior(ultimate, exposure)
    if latest_prior is not None and np.isfinite(latest_prior) and latest_prior > 0:
        prior[-1] = latest_prior
    bf = _bornhuetter_ferguson(tri, prior, tail)
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


def layer_names(edges: tuple[float, ...]) -> list[str]:
    """The lag columns of the cost layers between `edges` (none without edges)."""
    return [f"layer_{k}" for k in range(len(edges) + 1)] if len(edges) else []


def with_layers(lags: pd.DataFrame, edges: tuple[float, ...]) -> pd.DataFrame:
    """The lags with each claim's increment of every cost layer (`layer_names`) of its
    member-year's running total; the lags as they are without edges."""
    if not len(edges):
        return lags
    bounds = np.r_[0.0, edges, np.inf]
    before = lags["before"].to_numpy()
    after = before + lags["cost"].to_numpy()
    return lags.assign(**{
        name: layer_content(after, lo, hi) - layer_content(before, lo, hi)
        for name, (lo, hi) in zip(layer_names(edges), itertools.pairwise(bounds),
                                  strict=True)})


def trend_leverage(years, year: int) -> float:
    """How much a shift in the log level of the latest fitted year moves the log level
    projected to `year` by a linear trend fitted over `years` (its hat value)."""
    t = np.asarray(sorted(set(int(y) for y in years)), dtype=float)
    if len(t) < 2:
        return 1.0
    centred = t - t.mean()
    return float(1 / len(t) + centred[-1] * (year - t.mean()) / (centred**2).sum())
