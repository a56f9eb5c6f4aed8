"""How far a future year may sit from the model: the spread of past years around it and
the uncertainty of extrapolating a trend, for the scenarios' systemic effects."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_YEAR_SD = 0.01  # a model never matches every past year exactly


def year_sd(actual: pd.Series, expected: pd.Series, n_params: int) -> float:
    """Spread of log(actual / expected) by year: the systemic year-to-year effect."""
    log_ae = np.log(actual / expected)
    dof = max(len(log_ae) - n_params, 1)
    return float(max(np.sqrt((log_ae**2).sum() / dof), MIN_YEAR_SD))


def year_level_variance(years: np.ndarray, resid: np.ndarray) -> float:
    """The variance of a systemic year effect (log units squared) seen in per-claimant
    log residuals `resid` of service `years`, net of sampling; may come out below 0.

    Each year's level is its claimants' mean residual. The model's trend is estimated, so
    the levels are taken about their own line in the year (least squares weighted by
    claimants), as `prediction_factor` assumes of the spread it widens: a trend is not a
    year effect, and two years show none beyond it (0). Under no year effect a level
    still varies by sampling, s^2 / n of its year (s^2 the residuals' pooled variance
    within years); so with e = M level, M the residual maker of that line,
    E[e'e] = s^2 tr(M D M') + tau^2 tr(M M'), D = diag(1 / n), solved for tau^2."""
    by_year = pd.DataFrame({"year": years, "r": resid}).groupby("year")["r"]
    n, level = by_year.size().to_numpy(dtype="float64"), by_year.mean()
    if len(n) < 3:
        return 0.0
    within = float(by_year.var(ddof=1).fillna(0.0).to_numpy() @ (n - 1)
                   / max(n.sum() - len(n), 1))
    t = level.index.to_numpy(dtype="float64")
    x = np.column_stack([np.ones_like(t), t - t.mean()])
    m = np.eye(len(n)) - x @ np.linalg.solve(x.T @ (x * n[:, None]), (x * n[:, None]).T)
    e = m @ level.to_numpy()
    sampling = within * np.trace(m @ np.diag(1 / n) @ m.T)
    return float((e @ e - sampling) / np.trace(m @ m.T))


def prediction_factor(years: np.ndarray, year: int) -> float:
    """How much wider than one year's spread the log level of `year` is, when the level
    and its trend are estimated from `years`: sqrt(1 + 1/n + h^2 / sum (t - mean)^2), the
    prediction interval of a linear trend (h = year - mean of the years)."""
    years = np.asarray(sorted(set(np.asarray(years).tolist())), dtype="float64")
    if len(years) < 2:
        return 1.0
    h = year - years.mean()
    return float(np.sqrt(1 + 1 / len(years) + h * h / ((years - years.mean()) ** 2).sum()))
