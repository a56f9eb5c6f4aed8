"""The QQ plot draws every point of a small sample, and of a large one every point of both
tails and evenly spaced ranks between, each at its own plotting position."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
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


def test_a_log_axis_over_decades_reads_in_plain_numbers_without_minor_ticks():
    """Costs over several decades: ticks at the powers of ten written 10, 1k, 100k (no
    mathtext exponent) and no minor ticks (a third of a log plot's drawing time)."""
    dist = SplicedSeverity(mu=0.0, sigma=1.0, threshold=4.0, tail_prob=0.05, alpha=1.5,
                           scale=1_000.0)
    costs = dist.sample(np.random.default_rng(2), 20_000)
    fig = plots.qq(costs, dist, "qq", "CNY")
    FigureCanvasAgg(fig).draw()
    for axis in (fig.axes[0].xaxis, fig.axes[0].yaxis):
        shown = {t.get_text() for t in axis.get_ticklabels() if t.get_visible()} - {""}
        assert shown and not any("$" in s or "^" in s for s in shown), shown
        assert axis.get_minorticklocs().size == 0
        # each label is its tick's value as the plain number it names
        for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels(),
                              strict=True):
            assert label.get_text() == plots._plain_number(loc)
    plots.close(fig)


def test_plain_numbers_of_powers_of_ten():
    written = [plots._plain_number(10.0 ** k) for k in range(-2, 11)]
    assert written == ["0.01", "0.1", "1", "10", "100", "1k", "10k", "100k", "1M", "10M",
                       "100M", "1G", "10G"]
    # the letters scale back to the value
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}
    for k, text in zip(range(-2, 11), written, strict=True):
        number = float(text[:-1]) * scale[text[-1]] if text[-1] in scale else float(text)
        assert number == pytest.approx(10.0 ** k)


def test_a_log_axis_within_a_decade_keeps_matplotlib_s_labelled_ticks():
    """Within one decade the powers of ten would leave the axis bare: matplotlib's own
    ticks stay (it labels the minor ones then)."""
    fig, ax = plots.new_figure()
    values = np.linspace(200.0, 900.0, 20)
    ax.semilogx(values, values)
    plots.log_ticks(ax.xaxis, values)
    FigureCanvasAgg(fig).draw()
    assert ax.xaxis.get_minorticklocs().size > 0
    assert any(t.get_text() for t in ax.xaxis.get_minorticklabels())
    plots.close(fig)
