"""Linear coefficients of the plan problem, computed from a Forecast.

For a fixed deductible d, cap and cap cost level x_cap, the expected payout is linear in
the band ratios: sum_k r_k * N * layer_k(d, x_cap). The cap's cost level depends on the
ratios themselves, so coefficients are computed at a guess of the ratios and the optimiser
re-linearises at its answer until the chosen plan's x_cap no longer moves: at that point
the LP prices the chosen plan exactly as the evaluator does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from forecasting.forecast import Forecast, ScenarioSet
from optimization.plan import Plan, SpecialRules
from optimization.space import PlanSpace


@dataclass(frozen=True)
class Combo:
    """One discrete choice: a deductible and a cap (None: no cap)."""

    deductible: float
    cap: float | None


@dataclass(frozen=True)
class Coefficients:
    """Expected amounts per unit of ratio, in CNY (see module doc).

    general[i, k]: payout to non-special claimants per unit r_k under combo i.
    special[i, k]: the same for special-group claimants (their ratio is r_k + increment).
    above[i]: expected eligible cost above the members' deductibles under combo i.
    widths[i, j, k]: cost inside band k for a (non-special) member at level j, combo i.
    scen_general/special[s, i, k]: the same amounts as general/special in scenario s.
    """

    combos: tuple[Combo, ...]
    ratios_at: tuple[float, ...]
    general: np.ndarray
    special: np.ndarray
    above: np.ndarray
    widths: np.ndarray
    x_caps: np.ndarray
    scen_general: np.ndarray | None = None
    scen_special: np.ndarray | None = None


def combos(space: PlanSpace, status_quo: Plan | None = None) -> tuple[Combo, ...]:
    """All deductible x cap choices; today's deductible and cap are always among them."""
    deds = set(space.deductible.candidates)
    caps = set(space.cap.candidates)
    if status_quo is not None:
        deds.add(status_quo.deductible)
        caps.add(status_quo.cap)
    caps_sorted = sorted(caps, key=lambda c: np.inf if c is None else c)
    return tuple(Combo(d, c) for d, c in itertools.product(sorted(deds), caps_sorted))


def plan_of(space: PlanSpace, combo: Combo, ratios, premium: float) -> Plan:
    """The Plan for a combo, ratios and premium, with the space's special-group rules."""
    s = space.special
    return Plan(premium_per_capita=premium, deductible=combo.deductible,
                band_edges=space.bands.edges, ratios=tuple(float(r) for r in ratios),
                cap=combo.cap, special=SpecialRules(s.deductible_factor, s.ratio_increment,
                                                    s.cap))


def _band_matrix(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper cost of each band, clipped at the plan's cap cost level."""
    x_cap = plan.capped_cost()
    return np.minimum(plan.lower_edges, x_cap), np.minimum(plan.upper_edges, x_cap)


def compute(space: PlanSpace, forecast: Forecast, combos_: tuple[Combo, ...],
            ratios_at, scenarios: ScenarioSet | None = None) -> Coefficients:
    """Coefficients at the ratio guess `ratios_at` (see module doc)."""
    special = forecast._special()
    n = forecast.cohorts["claimants"].to_numpy(float)
    plans = [plan_of(space, c, ratios_at, 1.0) for c in combos_]
    sp_plans = [p.for_special_group() for p in plans]
    bands = [_band_matrix(p) for p in plans]
    sp_bands = [_band_matrix(p) for p in sp_plans]
    points = np.unique(np.concatenate(
        [np.concatenate(b) for b in bands] + [np.concatenate(b) for b in sp_bands]
        + [np.array([p.deductible, p.for_special_group().deductible]) for p in plans]))
    points = points[np.isfinite(points)]
    lev = np.array([np.atleast_1d(sev.lev(points)) for sev in forecast.severities])
    mean = np.array([sev.mean() for sev in forecast.severities])

    def lev_at(x: np.ndarray) -> np.ndarray:  # (cohorts, len(x)), E[min(X, x)]
        idx = np.searchsorted(points, np.minimum(x, points.max()))
        return np.where(np.isinf(x)[None, :], mean[:, None], lev[:, idx])

    def amounts(lo, hi, who):
        return (n[who] @ (lev_at(hi)[who] - lev_at(lo)[who]))

    general = np.array([amounts(*b, ~special) for b in bands])
    special_amt = np.array([amounts(*b, special) for b in sp_bands])
    above = np.array([
        amounts(np.array([p.deductible]), np.array([np.inf]), ~special)[0]
        + amounts(np.array([p.for_special_group().deductible]), np.array([np.inf]), special)[0]
        for p in plans])
    levels = np.array(space.constraints.no_worse_levels)
    widths = np.array([np.clip(levels[:, None], p.lower_edges, p.upper_edges) - p.lower_edges
                       for p in plans])
    coef = Coefficients(combos_, tuple(ratios_at), general, special_amt, above, widths,
                        np.array([p.capped_cost() for p in plans]))
    if scenarios is None:
        return coef
    sg, ss = _scenario_amounts(scenarios, bands, sp_bands)
    return Coefficients(*[getattr(coef, f) for f in (
        "combos", "ratios_at", "general", "special", "above", "widths", "x_caps")], sg, ss)


def _scenario_amounts(sc: ScenarioSet, bands, sp_bands) -> tuple[np.ndarray, np.ndarray]:
    """Per scenario, the cost inside each band summed over claimants, for both groups.

    sum_i min(x_i, t) for every band edge t comes from one pass: each cost's bin among the
    edges, then per scenario the sums below a bin and the counts at or above it.
    """
    special = sc.special[sc.cohort]
    out = []
    for group_bands, who in ((bands, ~special), (sp_bands, special)):
        edges = np.unique(np.concatenate([np.concatenate(b) for b in group_bands]))
        edges = edges[np.isfinite(edges)]
        if edges.min() < sc.floor:
            raise ValueError(f"scenarios hold costs above {sc.floor:g} CNY; a band starts at "
                             f"{edges.min():g}")
        cost, scen = sc.cost[who], sc.scenario[who]
        nb = len(edges) + 1
        bin_ = np.searchsorted(edges, cost, side="right")   # edges[bin-1] <= cost < edges[bin]
        key = scen.astype(np.int64) * nb + bin_
        sums = np.bincount(key, weights=cost, minlength=sc.n * nb).reshape(sc.n, nb)
        counts = np.bincount(key, minlength=sc.n * nb).reshape(sc.n, nb)
        # S(t_j) = sum of costs in bins below j + t_j * count in bins j and above
        below = np.cumsum(sums, axis=1)[:, :-1]
        at_or_above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]
        s_edge = below + edges[None, :] * at_or_above
        total = sums.sum(axis=1)

        def s_at(x, s_edge=s_edge, edges=edges, total=total):
            x = np.asarray(x)
            idx = np.searchsorted(edges, np.minimum(x, edges.max()))
            return np.where(np.isinf(x)[None, :], total[:, None], s_edge[:, idx])

        out.append(np.stack([s_at(hi) - s_at(lo) for lo, hi in group_bands], axis=1))
    return out[0], out[1]
