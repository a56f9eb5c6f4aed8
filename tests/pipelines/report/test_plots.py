"""The QQ plot draws every point of a small sample, and of a large one every point of both
tails and evenly spaced ranks between, each at its own plotting position."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

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


def _figures_with_wide_labels():
    """Each chart with labels as wide as ciplan's get: six-digit costs, long band names."""
    rng = np.random.default_rng(2)
    dist = SplicedSeverity(mu=9.5, sigma=1.2, threshold=8.0, tail_prob=0.05, alpha=1.8,
                           scale=20_000.0)
    costs = dist.sample(rng, 20_000)
    bands = pd.DataFrame({"cost": rng.uniform(1e5, 9e5, 18), "pred": rng.uniform(1e5, 9e5, 18)},
                         index=[f"{a}-{a + 4}" for a in range(0, 90, 5)])
    exposure = rng.uniform(1, 10, 50)
    yield plots.observed_vs_predicted(bands, "cost", "pred", "Mean annual cost per claimant "
                                      "by age band", "CNY")
    yield plots.lorenz(rng.random(50), exposure, rng.poisson(exposure).astype(float), "Lorenz")
    yield plots.mean_excess(costs, dist, "Mean excess of scale-free costs", "CNY, scale-free")
    yield plots.qq(costs, dist, "QQ plot of scale-free costs", "CNY, scale-free", 1_000.0)


def test_fixed_margins_keep_every_label_inside_the_figure():
    """The figures are laid out with fixed margins (no tight_layout pass): what they draw,
    tick labels, axis labels, titles and legends, still lies inside the figure."""
    for fig in _figures_with_wide_labels():
        drawn = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer())  # inches
        width, height = fig.get_size_inches()
        assert drawn.x0 >= 0 and drawn.y0 >= 0, (fig.axes[0].get_title(), drawn)
        assert drawn.x1 <= width and drawn.y1 <= height, (fig.axes[0].get_title(), drawn)
        plots.close(fig)


def test_chinese_labels_are_drawn_in_a_cjk_font():
    """A currency "元" or a Chinese title is set in the machine's CJK font (fonts-noto-cjk,
    which `make test` needs), so no glyph is missing when the figure is drawn."""
    bands = pd.DataFrame({"o": [1.0, 2.0], "p": [1.5, 1.8]}, index=["0-4", "5-9"])
    fig = plots.observed_vs_predicted(bands, "o", "p", "按年龄段的人均费用", "元")
    assert "CJK" in plots.font_family()[0]
    assert fig.axes[0].yaxis.label.get_fontfamily()[0] == plots.font_family()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font"
        FigureCanvasAgg(fig).draw()
    plots.close(fig)


def test_a_money_unit_is_drawn_as_it_is_not_as_mathtext():
    """The unit in an axis label is user text: dollars in it are dollars (mathtext of
    "$\\notacommand$" failed to draw)."""
    dist = SplicedSeverity(mu=0.0, sigma=1.0, threshold=4.0, tail_prob=0.05, alpha=2.0,
                           scale=1_000.0)
    costs = dist.sample(np.random.default_rng(1), 2_000)
    bands = pd.DataFrame({"o": [1.0, 2.0], "p": [1.5, 1.8]}, index=["0-4", "5-9"])
    unit = "$\\notacommand$"
    for fig in (plots.qq(costs, dist, "qq", unit), plots.mean_excess(costs, dist, "me", unit),
                plots.observed_vs_predicted(bands, "o", "p", "cost", unit)):
        FigureCanvasAgg(fig).draw()
        assert unit in fig.axes[0].yaxis.label.get_text()
        plots.close(fig)
