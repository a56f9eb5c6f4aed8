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
from forecasting.scheme.plan import Plan, SpecialRules
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
            ratios_at, sums: tuple[ScenarioSums, ScenarioSums] | None = None
            ) -> Coefficients:
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
    if sums is None:
        return coef
    sg, ss = _scenario_amounts(sums, bands, sp_bands)
    return Coefficients(*[getattr(coef, f) for f in (
        "combos", "ratios_at", "general", "special", "above", "widths", "x_caps")], sg, ss)


class ScenarioSums:
    """S_s(t) = sum over one group's claimants in scenario s of min(cost, t), for any t.

    Built once: one pass bins every cost among the fixed edges (deductibles and band edges);
    a cap's cost level above the top edge then needs only the few costs above that edge.
    """

    def __init__(self, sc: ScenarioSet, who: np.ndarray, edges: np.ndarray):
        edges = np.unique(edges[np.isfinite(edges)])
        if edges.min() < sc.floor:
            raise ValueError(f"scenarios hold costs above {sc.floor:g} CNY; a band starts at "
                             f"{edges.min():g}")
        self.n, self.edges = sc.n, edges
        self.cost, self.scen = sc.cost[who], sc.scenario[who]
        nb = len(edges) + 1
        bin_ = np.searchsorted(edges, self.cost, side="right")  # edges[b-1] <= cost < edges[b]
        key = self.scen.astype(np.int64) * nb + bin_
        sums = np.bincount(key, weights=self.cost, minlength=sc.n * nb).reshape(sc.n, nb)
        counts = np.bincount(key, minlength=sc.n * nb).reshape(sc.n, nb)
        # S(t_j) = sum of costs in bins below j + t_j * count in bins j and above
        below = np.cumsum(sums, axis=1)[:, :-1]
        at_or_above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]
        self.s_edge = below + edges[None, :] * at_or_above
        self.total = sums.sum(axis=1)
        top = self.cost > edges[-1]
        self.tail_cost, self.tail_scen = self.cost[top], self.scen[top]

    def _one(self, t: float) -> np.ndarray:
        if np.isinf(t):
            return self.total
        j = np.searchsorted(self.edges, t)
        if j < len(self.edges) and self.edges[j] == t:
            return self.s_edge[:, j]
        if t > self.edges[-1]:
            extra = np.minimum(self.tail_cost, t) - self.edges[-1]
            return self.s_edge[:, -1] + np.bincount(self.tail_scen, weights=extra,
                                                    minlength=self.n)
        return np.bincount(self.scen, weights=np.minimum(self.cost, t), minlength=self.n)

    def at(self, x: np.ndarray) -> np.ndarray:
        """S_s(x_j) for every scenario s and point x_j: shape (n, len(x))."""
        return np.stack([self._one(float(t)) for t in np.atleast_1d(x)], axis=1)


def scenario_sums(space: PlanSpace, sc: ScenarioSet, combos_: tuple[Combo, ...]
                  ) -> tuple[ScenarioSums, ScenarioSums]:
    """The sums of both groups (general, special) at every deductible and band edge."""
    special = sc.special[sc.cohort]
    deds = np.array([c.deductible for c in combos_])
    edges = np.array(space.bands.edges)
    general = ScenarioSums(sc, ~special, np.concatenate([deds, edges]))
    factor = space.special.deductible_factor
    return general, ScenarioSums(sc, special, np.concatenate([deds * factor, edges]))


def _scenario_amounts(sums: tuple[ScenarioSums, ScenarioSums], bands, sp_bands
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Per scenario, the cost inside each band summed over claimants, for both groups."""
    return tuple(np.stack([s.at(hi) - s.at(lo) for lo, hi in group_bands], axis=1)
                 for s, group_bands in zip(sums, (bands, sp_bands), strict=True))
