"""Charts people would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def observed_vs_predicted(frame: pd.DataFrame, observed: str, predicted: str, title: str,
                          ylabel: str) -> Figure:
    """Bars of the observed value by age band, the model's prediction as a line."""
    fig, ax = new_figure(figsize=(8, 4))
    x = np.arange(len(frame))
    ax.bar(x, frame[observed], color="#9ab", label="observed")
    ax.plot(x, frame[predicted], color="#c33", marker="o", label="predicted")
    ax.set_xticks(x, frame.index.astype(str), rotation=45)
    ax.set_xlabel("age band")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


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
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    """Release a figure (figures are not registered with pyplot: nothing global to close)."""
    fig.clear()


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (7, 3)):
    """(figure, axes) without pyplot: no backend, no global figure registry."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)
