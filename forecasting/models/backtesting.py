"""Rolling-origin backtest: fit on the years before t, forecast t, compare with t.

Model choice is made here, out of sample, never by in-sample fit, and on a robust summary
of the years (`summarise`): the median over the years whose held-out data hold at least
`min_claimants` claimants (a year of a handful of claimants says nothing about severity),
the years left out named.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import mean_gamma_deviance, mean_poisson_deviance

from forecasting.data.cells import Cells
from forecasting.forecast import Forecast, reported_layer
from forecasting.models.claims import ClaimsModel
from forecasting.models.severity import lev_matrix
from forecasting.scheme.accounts import year_result
from forecasting.scheme.in_force import Scheme

METRICS = ("poisson_deviance", "gamma_deviance", "gini", "claimants_error",
           "severity_error", "layer_error", "above_deductible_error", "payout_error",
           "loss_error_share")
PLAN_METRICS = ("above_deductible_error", "payout_error", "loss_error_share")
MIN_CLAIMANTS = 30  # held-out claimants a year needs to count in the robust summary


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


def layer_errors(forecast: Forecast, actual: Cells, levels: list[float]) -> np.ndarray:
    """Relative error of each layer's total cost over the year's claimants, the forecast's
    severities priced at the actual claimant counts of each cohort (so that only the
    severity is judged): per reported claimant when the data are truncated."""
    keys = forecast.spec.columns
    counts = actual.claimants.groupby(keys, observed=True).size().rename("n").reset_index()
    index = forecast.cohorts[keys].reset_index(drop=True).reset_index()
    matched = counts.merge(index, on=keys, how="inner")
    cost = actual.claimants["cost"].to_numpy()
    threshold = forecast.reported_above
    edges = np.array([0.0, *levels, np.inf])
    sevs = [forecast.severities[i] for i in matched["index"]]
    # untruncated: each cohort's E[min(X, b)] at every edge in one call, layers by difference
    layers = None if threshold > 0 else np.diff(lev_matrix(sevs, edges), axis=1)
    out = []
    for j, (a, b) in enumerate(itertools.pairwise(edges)):
        seen = float((np.minimum(cost, b) - np.minimum(cost, a)).sum())
        per = ([reported_layer(s, a, b, threshold) for s in sevs] if layers is None
               else layers[:, j])
        predicted = float(np.dot(matched["n"], per))
        out.append(predicted / seen - 1 if seen > 0 else np.nan)
    return np.array(out)


def _plan_metrics(forecast: Forecast, cells: Cells, scheme: Scheme) -> dict:
    """Errors of the year's accounts under its plan in force (NaN without a plan)."""
    year = forecast.year
    if year not in scheme.plans or year not in scheme.markets:
        return dict.fromkeys(PLAN_METRICS, np.nan)
    plan, market = scheme.plan(year), scheme.market(year)
    result = year_result(cells, year, plan, market)
    payout = forecast.expected_payout(plan)
    premium = plan.premium_per_capita * forecast.insured
    loss = payout + market.operating_cost(premium) - premium
    return {
        "above_deductible_error": forecast.expected_above_deductible(plan)
        / result.eligible_above_deductible - 1,
        "payout_error": payout / result.payouts - 1,
        "loss_error_share": (loss - result.loss) / result.premium_income,
    }


def evaluate(model: ClaimsModel, forecast: Forecast, cells: Cells, scheme: Scheme) -> dict:
    """Backtest metrics of a forecast of one year against that year's cells."""
    actual = cells.year(forecast.year)
    t = actual.table
    freq = model.predict_frequency(t)
    seen = t["claimants"] > 0
    sev_pred = _mean_above(model, t[seen], cells.reported_above)
    plan = scheme.latest_plan(forecast.year)
    levels = forecast.layer_levels(plan[1] if plan else None)
    reported = (forecast.cohorts["claimants"] * forecast.cohorts["reported_share"]).sum()
    sev_total = float((sev_pred * t.loc[seen, "claimants"]).sum())
    return {
        "poisson_deviance": mean_poisson_deviance(t["claimants"] / t["exposure"], freq,
                                                  sample_weight=t["exposure"]),
        "gamma_deviance": mean_gamma_deviance(t.loc[seen, "cost"] / t.loc[seen, "claimants"],
                                              sev_pred, sample_weight=t.loc[seen, "claimants"]),
        "gini": gini(freq, t["exposure"].to_numpy(), t["claimants"].to_numpy()),
        "claimants_error": reported / t["claimants"].sum() - 1,
        "severity_error": sev_total / t.loc[seen, "cost"].sum() - 1,
        "layer_error": float(np.nanmean(np.abs(layer_errors(forecast, actual, levels)))),
        **_plan_metrics(forecast, cells, scheme),
    }


def backtest(cells: Cells, scheme: Scheme, make_model: Callable[[], ClaimsModel],
             origins: list[int] | None = None, shared: dict | None = None,
             known: Callable[[int], Cells] | None = None) -> pd.DataFrame:
    """One row of metrics per forecast year t (trained on the years before t), with the
    year's held-out claimants; `shared` lets candidates reuse each other's fits (see
    ClaimsModel.fit). `known(t)`: the cells a negotiator had for year t (the data as of
    that year's negotiation date, completed); by default the years before t as they are
    now."""
    years = cells.years
    origins = origins or years[1:]
    known = known or (lambda year: cells.until(year - 1))
    rows = []
    for year in origins:
        seen = known(year)
        model = make_model().fit(seen, shared)
        forecast = model.forecast(year)
        rows.append({"year": year, "claimants": int(cells.year(year).table["claimants"].sum()),
                     "as_reported": seen.as_of is not None and not seen.completion,
                     **evaluate(model, forecast, cells, scheme)})
    return pd.DataFrame(rows, columns=["year", "claimants", "as_reported", *METRICS])


def summarise(table: pd.DataFrame, metric: str, min_claimants: int = MIN_CLAIMANTS
              ) -> tuple[float, list[int]]:
    """The robust backtest score of `metric`: the median of its absolute value over the
    years with at least `min_claimants` held-out claimants whose training data were
    complete or completed (an as-of origin with one service year could not be developed:
    its error is the settlement lag's, not the model's), and the years left out; when no
    year qualifies, the years with enough claimants, else all."""
    enough = table["claimants"] >= min_claimants
    used = enough & ~table.get("as_reported", pd.Series(False, index=table.index)).astype(bool)
    if not used.any():
        used = enough if enough.any() else pd.Series(True, index=table.index)
    values = table.loc[used, metric].abs().dropna()
    score = float(values.median()) if len(values) else float("nan")
    return score, [int(y) for y in table.loc[~used, "year"]]
