"""Charts people would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator


def observed_vs_predicted(frame: pd.DataFrame, observed: str, predicted: str, title: str,
                          ylabel: str) -> Figure:
    """Bars of the observed value by age band, the model's prediction as a line."""
    fig, ax = new_figure(figsize=(8, 4))
    x = np.arange(len(frame))
    ax.bar(x, frame[observed], color="#9ab", label="observed")
    ax.plot(x, frame[predicted], color="#c33", marker="o", label="predicted")
    ax.set_xticks(x, frame.index.astype(str), rotation=45)
    ax.set_xlabel("age band")
    ax.set_ylabel(ylabel, parse_math=False)  # a money unit is user text, "$" a dollar
    ax.set_title(title)
    ax.legend()
    return margins(fig, bottom=1.0)  # room for the age bands written at 45 degrees


def lorenz(predicted: np.ndarray, exposure: np.ndarray, claimants: np.ndarray,
           title: str) -> Figure:
    """Share of claimants against share of exposure, cells ordered by predicted risk."""
    order = np.argsort(predicted)
    x = np.r_[0, np.cumsum(exposure[order])] / exposure.sum()
    y = np.r_[0, np.cumsum(claimants[order])] / claimants.sum()
    fig, ax = new_figure(figsize=(5, 5))
    ax.plot(x, y, color="#c33", label="model")
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", label="no ranking")
    ax.set_xlabel("share of exposure (lowest predicted risk first)")
    ax.set_ylabel("share of claimants")
    ax.set_title(title)
    ax.legend()
    return margins(fig)


def close(fig: Figure) -> None:
    """Release a figure (figures are not registered with pyplot: nothing global to close)."""
    fig.clear()


def margins(fig: Figure, left: float = 0.95, bottom: float = 0.65, right: float = 0.2,
            top: float = 0.4) -> Figure:
    """Fixed margins in inches (room for tick labels, axis labels and the title at
    matplotlib's default sizes), instead of `tight_layout`, which draws the figure once
    more to measure it: training saves 16 figures, and the extra draw was a second. Text
    beyond ASCII is set in a CJK font when the machine has one (a currency "元" or a
    Chinese band name would otherwise be drawn as empty boxes)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, bottom=bottom / h, right=1 - right / w,
                        top=1 - top / h)
    for text in fig.findobj(Text):
        if not text.get_text().isascii():  # a CJK font costs time to load and draw
            text.set_fontfamily(font_family())
    return fig


@functools.cache
def font_family() -> list[str]:
    """A CJK font the machine has (if any; Simplified Chinese and sans-serif first), then
    matplotlib's own DejaVu Sans. Matplotlib lists the fonts it found when it first ran:
    CJK fonts installed later (fonts-noto-cjk after matplotlib) are looked for and added."""
    from matplotlib import font_manager

    def cjk() -> list[str]:
        names = {f.name for f in font_manager.fontManager.ttflist
                 if "CJK" in f.name or "WenQuanYi" in f.name}
        return sorted(names, key=lambda n: (" SC" not in n, "Sans" not in n, "Mono" in n, n))

    if not cjk():
        for path in font_manager.findSystemFonts():
            if "CJK" in path or "wqy" in path.lower():
                with contextlib.suppress(Exception):  # a font file it cannot read
                    font_manager.fontManager.addfont(path)
    return [*cjk()[:1], "DejaVu Sans"]


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (7, 3)):
    """(figure, axes) without pyplot: no backend, no global figure registry."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def mean_excess(costs: np.ndarray, fitted, title: str, unit: str) -> Figure:
    """Empirical mean excess e(u) = E[X - u | X > u] of costs against the fitted
    distribution's (`fitted` has lev, cdf and mean), over the costs' 1st-99th percentiles;
    a rising straight line is a Pareto tail."""
    x = np.sort(np.asarray(costs, dtype="float64"))
    levels = np.quantile(x, np.linspace(0.01, 0.99, 60))
    above = np.array([x[x > u].mean() - u if (x > u).any() else np.nan for u in levels])
    model = np.array([(fitted.mean() - float(fitted.lev(u))) / max(1 - float(fitted.cdf(u)),
                                                                    1e-300) for u in levels])
    fig, ax = new_figure(figsize=(6, 4))
    ax.plot(levels, above, ".", color="#9ab", label="observed")
    ax.plot(levels, model, color="#c33", label="fitted")
    ax.set_xscale("log")
    log_ticks(ax.xaxis, levels)
    ax.set_xlabel(f"threshold u ({unit})", parse_math=False)
    ax.set_ylabel(f"mean excess over u ({unit})", parse_math=False)
    ax.set_title(title)
    ax.legend()
    return margins(fig)


def log_ticks(axis, values: np.ndarray) -> None:
    """A log axis showing `values`: over a decade or more, ticks at the powers of ten
    written as numbers ("10k", not 10 to the 4th: money reads as money) and no minor
    ticks, which were a third of a log plot's drawing time; over less, matplotlib's own
    ticks (it labels the minor ones then: powers of ten alone would leave it bare)."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) == 0 or v.max() < 10 * v.min():
        return
    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(_plain_number))
    axis.set_minor_locator(NullLocator())


def _plain_number(value: float, _position=None) -> str:
    """A power of ten as a short number: 0.1, 10, 1k, 100k, 1M, 10G (no exponent)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:g}{unit}"
    return f"{value:g}"


def qq_points(n: int, body: int = 2_000, ends: int = 200) -> np.ndarray:
    """Which of n sorted costs a QQ plot draws: every one of the `ends` smallest and largest
    (where a tail misfits) and `body` evenly spaced ranks between; 400 k claimants' points
    look the same on a 5-inch chart and cost seconds to draw."""
    ranks = np.linspace(0, n - 1, min(n, body)).round().astype(np.int64)
    edge = np.arange(min(n, ends))
    return np.unique(np.concatenate([ranks, edge, n - 1 - edge]))


def qq(costs: np.ndarray, fitted, title: str, unit: str, truncated_at: float = 0.0) -> Figure:
    """Quantiles of the costs against the fitted distribution's (log scales); under
    truncation at T both are of costs above T."""
    x = np.sort(np.asarray(costs, dtype="float64"))
    shown = qq_points(len(x))
    p = (shown + 0.5) / len(x)
    low = float(fitted.cdf(truncated_at)) if truncated_at > 0 else 0.0
    q = fitted.ppf(low + p * (1 - low))
    x = x[shown]
    fig, ax = new_figure(figsize=(5, 5))
    ax.loglog(q, x, ".", color="#9ab", markersize=3)
    lo, hi = min(q.min(), x.min()), max(q.max(), x.max())
    log_ticks(ax.xaxis, q)
    log_ticks(ax.yaxis, x)
    ax.plot([lo, hi], [lo, hi], color="#c33", linestyle="--")
    ax.set_xlabel(f"fitted quantile ({unit})", parse_math=False)
    ax.set_ylabel(f"observed cost ({unit})", parse_math=False)
    ax.set_title(title)
    return margins(fig)
