"""How well a fitted severity reproduces the costs it was fitted on: the layer fit table
(observed against fitted cost per claimant in each layer) and the scale-free costs behind
the mean-excess and QQ plots."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd

from forecasting.forecast import layer_above
from forecasting.models.severity import SplicedSeverityModel


def scale_free(model: SplicedSeverityModel, claimants: pd.DataFrame) -> np.ndarray:
    """Each claimant's cost divided by its cohort's fitted scale: draws of X0."""
    return claimants["cost"].to_numpy() / model.scale(claimants)


def layer_fit(model: SplicedSeverityModel, claimants: pd.DataFrame, levels: list[float],
              threshold: float = 0.0) -> pd.DataFrame:
    """Observed and fitted cost per claimant in each layer between consecutive `levels`
    (from 0 to infinity), summed over the claimants' own cohort distributions."""
    cost = claimants["cost"].to_numpy()
    scales, counts = np.unique(model.scale(claimants), return_counts=True)
    unit = replace(model.base_, scale=1.0)

    def lev(x: float) -> np.ndarray:
        """E[min(X, x)] at every distinct scale s at once: s lev_1(x / s) (CNY)."""
        return scales * unit.lev(x / scales)

    survival = 1 - unit.cdf(threshold / scales)
    rows = []
    for a, b in itertools.pairwise([0.0, *levels, np.inf]):
        observed = float((np.minimum(cost, b) - np.minimum(cost, a)).mean())
        per = layer_above(lev, survival, a, b, threshold) if threshold > 0 else lev(b) - lev(a)
        fitted = float(np.dot(counts, per) / counts.sum())
        rows.append({"layer_from": a, "layer_to": b, "observed": observed, "fitted": fitted,
                     "error": fitted / observed - 1 if observed > 0 else np.nan})
    return pd.DataFrame(rows)
