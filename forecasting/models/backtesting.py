"""Rolling-origin backtest: fit on the years before t, forecast t, compare with t.

Model choice is made here, out of sample, never by in-sample fit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import mean_gamma_deviance, mean_poisson_deviance

from forecasting.data.cells import Cells
from forecasting.forecast import Forecast
from forecasting.models.claims import ClaimsModel
from forecasting.scheme.accounts import year_result
from forecasting.scheme.in_force import Scheme

METRICS = ("poisson_deviance", "gamma_deviance", "gini", "claimants_error",
           "above_deductible_error", "payout_error", "loss_error_share")


def gini(predicted: np.ndarray, exposure: np.ndarray, claimants: np.ndarray) -> float:
    """Gini of the Lorenz curve of claimants over exposure, cells ordered by predicted risk."""
    order = np.argsort(predicted)
    x = np.r_[0, np.cumsum(exposure[order])] / exposure.sum()
    y = np.r_[0, np.cumsum(claimants[order])] / max(claimants.sum(), 1e-12)
    return float(1 - 2 * np.trapezoid(y, x))


def _mean_above(model: ClaimsModel, cells: pd.DataFrame, threshold: float) -> np.ndarray:
    """Predicted mean cost of the claimants the data show (those above the threshold)."""
    if threshold <= 0:
        return model.sev_.predict(cells)
    dists = model.sev_.distributions(cells)
    return np.array([threshold + (d.mean() - d.lev(threshold)) / (1 - d.cdf(threshold))
                     for d in dists])


def evaluate(model: ClaimsModel, forecast: Forecast, cells: Cells, scheme: Scheme) -> dict:
    """Backtest metrics of a forecast of one year against that year's cells."""
    year = forecast.year
    actual = cells.year(year)
    t = actual.table
    freq = model.freq_.predict(t)
    seen = t["claimants"] > 0
    sev_pred = _mean_above(model, t[seen], cells.reported_above)
    plan, market = scheme.plan(year), scheme.market(year)
    result = year_result(cells, year, plan, market)
    payout = forecast.expected_payout(plan)
    premium = plan.premium_per_capita * forecast.insured
    loss = payout + market.operating_cost(premium) - premium
    return {
        "poisson_deviance": mean_poisson_deviance(t["claimants"] / t["exposure"], freq,
                                                  sample_weight=t["exposure"]),
        "gamma_deviance": mean_gamma_deviance(t.loc[seen, "cost"] / t.loc[seen, "claimants"],
                                              sev_pred, sample_weight=t.loc[seen, "claimants"]),
        "gini": gini(freq, t["exposure"].to_numpy(), t["claimants"].to_numpy()),
        "claimants_error": forecast.cohorts["claimants"].sum() / t["claimants"].sum() - 1,
        "above_deductible_error": forecast.expected_above_deductible(plan)
        / result.eligible_above_deductible - 1,
        "payout_error": payout / result.payouts - 1,
        "loss_error_share": (loss - result.loss) / result.premium_income,
    }


def backtest(cells: Cells, scheme: Scheme, make_model: Callable[[], ClaimsModel],
             origins: list[int] | None = None) -> pd.DataFrame:
    """One row of metrics per forecast year t (trained on the years before t)."""
    years = cells.years
    origins = origins or years[1:]
    rows = []
    for year in origins:
        model = make_model().fit(cells.until(year - 1))
        forecast = model.forecast(year)
        rows.append({"year": year, **evaluate(model, forecast, cells, scheme)})
    return pd.DataFrame(rows, columns=["year", *METRICS])
