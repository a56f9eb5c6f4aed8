"""The layer fit table prices every distinct cohort scale in one call: the same figures as
the spliced severity of each claimant's own scale, priced one by one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.forecast import layer_above
from forecasting.models.diagnostics import layer_fit
from forecasting.models.spliced import SplicedSeverity


class _Scaled:
    """A fitted severity's two parts layer_fit reads: the scale-free base and the scales."""

    def __init__(self, base: SplicedSeverity):
        self.base_ = base

    @staticmethod
    def scale(claimants: pd.DataFrame) -> np.ndarray:
        return claimants["scale"].to_numpy()


@pytest.mark.parametrize("threshold", [0.0, 5_000.0])
def test_layer_fit_equals_each_claimants_own_distribution(threshold):
    rng = np.random.default_rng(3)
    base = SplicedSeverity(mu=0.0, sigma=0.9, threshold=3.0, tail_prob=0.08, alpha=2.2,
                           scale=1.0)
    scales = rng.choice([2_000.0, 3_500.0, 8_000.0, 12_000.0], 400)
    claimants = pd.DataFrame({"scale": scales, "cost": scales * base.sample(rng, 400)})
    levels = [5_000.0, 15_000.0, 50_000.0, 300_000.0]
    table = layer_fit(_Scaled(base), claimants, levels, threshold)
    for row in table.itertuples():
        a, b = row.layer_from, row.layer_to
        one_by_one = []
        for s in scales:
            d = replace(base, scale=float(s))
            one_by_one.append(layer_above(d.lev, 1 - float(d.cdf(threshold)), a, b, threshold)
                              if threshold > 0 else d.layer(a, b))
        assert row.fitted == pytest.approx(np.mean(one_by_one), rel=1e-12)
        cost = claimants["cost"].to_numpy()
        assert row.observed == pytest.approx(np.mean(np.minimum(cost, b) - np.minimum(cost, a)))
