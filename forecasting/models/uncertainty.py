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


def prediction_factor(years: np.ndarray, year: int) -> float:
    """How much wider than one year's spread the log level of `year` is, when the level
    and its trend are estimated from `years`: sqrt(1 + 1/n + h^2 / sum (t - mean)^2), the
    prediction interval of a linear trend (h = year - mean of the years)."""
    years = np.asarray(sorted(set(np.asarray(years).tolist())), dtype="float64")
    if len(years) < 2:
        return 1.0
    h = year - years.mean()
    return float(np.sqrt(1 + 1 / len(years) + h * h / ((years - years.mean()) ** 2).sum()))
