"""Completing claimants' annual costs layer by layer.

The bills still unsettled on the as-of date are the large, slow ones, so a year's higher
cost layers develop more than its lower ones: scaling every claimant alike puts the
missing cost in the wrong place and the year's payouts (a deductible, tiers, a cap) read
low. Each layer of the annual cost (between the plan's kinks and a few quantiles) is
developed on its own triangle; this module then finds the one increasing,
piecewise-linear map of the costs as known whose layer totals, times the claimant factor,
equal the developed ones, layer by layer from the bottom.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import brentq


def layer_content(total: np.ndarray, low: float, high: float) -> np.ndarray:
    """The part of each annual total inside the layer (low, high] (money units)."""
    return np.clip(np.asarray(total, dtype=float) - low, 0.0, high - low)


def layer_edges(*groups: list[float]) -> np.ndarray:
    """Sorted distinct positive finite edges; the layers are (0, e1], ..., (eK, inf)."""
    edges = {float(e) for g in groups for e in g if np.isfinite(e) and e > 0}
    return np.array(sorted(edges))


def layer_totals(costs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Total cost inside each of the len(edges) + 1 layers."""
    bounds = np.r_[0.0, edges, np.inf]
    return np.array([layer_content(costs, lo, hi).sum()
                     for lo, hi in itertools.pairwise(bounds)])


def _knot(above: np.ndarray, width: float, target: float) -> float | None:
    """The length d of the stretch of known cost mapped onto a layer of `width`, so that
    width / d x sum(min(above, d)) = target (the layer's completed total per claimant row);
    None when even every claimant above it crossing the whole layer falls short."""
    if target <= 0:
        return None if above.size else np.inf
    if target >= width * above.size:
        return None
    lo = 0.5 * above.min()
    hi = max(above.max(), width * above.sum() / target)
    return brentq(lambda d: width * np.minimum(above, d).sum() / d - target, lo, hi,
                  xtol=1e-9 * hi, rtol=1e-12)


def layered_map(costs: np.ndarray, scale: float, edges: np.ndarray, targets: np.ndarray
                ) -> np.ndarray | None:
    """The completed annual cost of each claimant: an increasing piecewise-linear T of the
    cost as known (T(0) = 0, the k-th knot mapped onto edge k, linear above the last) with
    scale x sum over claimants of layer_k(T(cost)) = targets[k] for every layer; None when
    no such map exists (a layer needs more claimants than the data hold above it)."""
    costs = np.asarray(costs, dtype=float)
    per_row = np.asarray(targets, dtype=float) / scale
    bounds = np.r_[0.0, edges]
    knots = [0.0]
    for k in range(len(edges)):
        above = costs[costs > knots[-1]] - knots[-1]
        d = _knot(above, bounds[k + 1] - bounds[k], per_row[k])
        if d is None:
            return None
        if not np.isfinite(d):  # nothing reaches this layer, nor any above it
            return (None if per_row[k + 1:].sum() > 0 else
                    np.interp(costs, knots, bounds[:len(knots)]))
        knots.append(knots[-1] + d)
    top = np.maximum(costs - knots[-1], 0.0).sum()
    if top == 0:
        return None if per_row[-1] > 0 else np.interp(costs, knots, bounds)
    slope = per_row[-1] / top
    inside = np.interp(costs, knots, bounds)
    return np.where(costs > knots[-1], bounds[-1] + slope * (costs - knots[-1]), inside)
