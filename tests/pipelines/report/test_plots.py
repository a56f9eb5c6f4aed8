"""The QQ plot draws every point of a small sample, and of a large one every point of both
tails and evenly spaced ranks between, each at its own plotting position."""

from __future__ import annotations

import numpy as np

from forecasting.models.spliced import SplicedSeverity
from pipelines.report import plots


def test_qq_points_keep_small_samples_whole_and_the_tails_of_large_ones():
    np.testing.assert_array_equal(plots.qq_points(150), np.arange(150))
    n = 400_000
    shown = plots.qq_points(n)
    assert len(shown) <= 2_000 + 400 and (np.diff(shown) > 0).all()
    assert set(range(200)) <= set(shown) and set(range(n - 200, n)) <= set(shown)
    assert np.diff(shown).max() <= n / 1_999 + 1


def test_qq_draws_each_shown_cost_against_its_own_fitted_quantile():
    dist = SplicedSeverity(mu=0.0, sigma=1.0, threshold=4.0, tail_prob=0.05, alpha=2.0,
                           scale=1_000.0)
    costs = dist.sample(np.random.default_rng(1), 50_000)
    fig = plots.qq(costs, dist, "qq", "CNY")
    line = fig.axes[0].lines[0]
    q, x = line.get_xdata(), line.get_ydata()
    shown = plots.qq_points(costs.size)
    np.testing.assert_array_equal(x, np.sort(costs)[shown])
    np.testing.assert_allclose(q, dist.ppf((shown + 0.5) / costs.size))
    plots.close(fig)
