"""Exact prices of many plans at once, from a Forecast's limited expected values.

A plan's payout to a member with annual cost x is g(x) = min(cap, sum_k r_k w_k(x)), w_k
the part of x inside band k. Because g is increasing, min(cap, g(x)) = g(min(x, x_cap))
where x_cap is the cost at which g reaches the cap, so the expected payout of a group of
members is sum_k r_k [Lam(min(U_k, x_cap)) - Lam(min(L_k, x_cap))], with
Lam(t) = sum over the group's cohorts of claimants x E[min(X, t)]. x_cap depends on the
ratios, which is why payout is not linear in them; here it is computed exactly, plan by
plan, never linearised at a guess. Scenario payouts use the same identity with the
per-scenario sums S_s(t) = sum over a scenario's simulated costs of min(cost, t).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from forecasting.forecast import Forecast, ScenarioSet
from forecasting.scheme.plan import Plan, SpecialRules
from optimization.space import PlanSpace

# Amounts of money (payouts, costs) closer than this share of their size are equal: float
# rounding. A share, not an amount: money comes in the data's units (CNY, fen, thousands),
# and a fixed fen let a portfolio in thousands pay every claimant 3 CNY less than today
# and still count as "nobody worse off".
RTOL = 1e-9


def tol(amount):
    """The rounding allowed on an amount of money (same units)."""
    return RTOL * np.abs(amount)


@dataclass(frozen=True)
class Combo:
    """One discrete choice: a deductible and a cap (None: no cap), CNY."""

    deductible: float
    cap: float | None


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
    return Plan(premium_per_capita=premium, deductible=combo.deductible,
                band_edges=space.bands.edges, ratios=tuple(float(r) for r in ratios),
                cap=combo.cap, special=special_rules(space))


def _ratio_values(space: PlanSpace) -> np.ndarray:
    """The ratios a band may take in a stepped space: ratio_min, then each step up to
    ratio_max."""
    b = space.bands
    n = round((b.ratio_max - b.ratio_min) / b.step) if b.step > 0 else 0
    values = np.round(b.ratio_min + b.step * np.arange(n + 1), 10)
    return values[values <= b.ratio_max + 1e-12]


def ratio_grid_size(space: PlanSpace, status_quo: Plan | None = None) -> int:
    """How many rows `ratio_grid` holds: counted, not built (a fine step makes billions,
    which must be searched otherwise or refused)."""
    values, K = _ratio_values(space), len(space.bands.edges) + 1
    increasing = space.constraints.ratios_increasing
    n = len(values)
    size = math.comb(n + K - 1, K) if increasing else n**K
    if status_quo is None or len(status_quo.ratios) != K:
        return size
    today = np.asarray(status_quo.ratios, dtype="float64")
    on_grid = np.isin(today, values).all() and (
        not increasing or bool((np.diff(today) >= 0).all()))
    return size + (not on_grid)


def ratio_grid(space: PlanSpace, status_quo: Plan | None = None) -> np.ndarray:
    """Every ratio tuple of a stepped space (rows), non-decreasing when the rule is on,
    today's ratios always included (they may sit off the grid)."""
    K = len(space.bands.edges) + 1
    values = _ratio_values(space)
    if space.constraints.ratios_increasing:
        rows = np.array(list(itertools.combinations_with_replacement(values, K)))
    else:
        rows = np.array(list(itertools.product(values, repeat=K)))
    if status_quo is not None and len(status_quo.ratios) == K:
        rows = np.unique(np.vstack([rows, np.array(status_quo.ratios)[None, :]]), axis=0)
    return rows


@dataclass(frozen=True)
class Schedule:
    """Payout schedules of many plans for one kind of member: band edges (fixed), ratios
    (one row per plan), cap (one per plan, inf for none). Money in CNY."""

    lower: np.ndarray   # (K,) band lower edges, the first at the deductible
    upper: np.ndarray   # (K,) band upper edges, the last inf
    ratios: np.ndarray  # (m, K)
    cap: np.ndarray     # (m,)

    @property
    def x_cap(self) -> np.ndarray:
        """The annual cost at which each plan's payout reaches its cap (inf: never)."""
        widths = np.where(np.isfinite(self.upper), self.upper - self.lower, 0.0)
        at_lower = np.concatenate([np.zeros((len(self.ratios), 1)),
                                   np.cumsum(self.ratios[:, :-1] * widths[None, :-1], axis=1)],
                                  axis=1)
        out = np.full(len(self.ratios), np.inf)
        for k in range(len(self.lower)):
            reach = (at_lower[:, k] <= self.cap) & np.isinf(out)
            top = at_lower[:, k] + self.ratios[:, k] * widths[k] if np.isfinite(
                self.upper[k]) else np.full(len(out), np.inf)
            here = reach & (self.cap < top) & (self.ratios[:, k] > 0)
            out[here] = self.lower[k] + (self.cap[here] - at_lower[here, k]) / \
                self.ratios[here, k]
        return np.where(np.isfinite(self.cap), out, np.inf)

    def pay(self, cost: np.ndarray) -> np.ndarray:
        """Payout (m, len(cost)) of each plan to a member with each annual cost."""
        cost = np.atleast_1d(np.asarray(cost, dtype="float64"))
        raw = np.zeros((len(self.ratios), len(cost)))
        for k in range(len(self.lower)):
            inside = np.clip(cost, self.lower[k], self.upper[k]) - self.lower[k]
            raw += self.ratios[:, k:k + 1] * inside[None, :]
        return np.minimum(raw, self.cap[:, None])

    def pay_at(self, cost: np.ndarray) -> np.ndarray:
        """Payout (m,) of each plan at its own annual cost cost[i]."""
        raw = np.zeros(len(self.ratios))
        for k in range(len(self.lower)):
            raw += self.ratios[:, k] * (np.clip(cost, self.lower[k], self.upper[k])
                                        - self.lower[k])
        return np.minimum(raw, self.cap)

    def breakpoints(self) -> np.ndarray:
        """(m, n) annual costs where each plan's schedule bends (edges, x_cap)."""
        fixed = np.concatenate([self.lower, self.upper[np.isfinite(self.upper)]])
        return np.concatenate([np.broadcast_to(fixed, (len(self.ratios), len(fixed))),
                               self.x_cap[:, None]], axis=1)

    def final_slope(self) -> np.ndarray:
        """Payout per CNY of cost far above every breakpoint: 0 once capped."""
        return np.where(np.isfinite(self.x_cap), 0.0, self.ratios[:, -1])


def schedules(plan_combo: Combo, ratios: np.ndarray, space_special: SpecialRules,
              edges: tuple[float, ...]) -> tuple[Schedule, Schedule]:
    """The ordinary and special-group schedules of plans sharing a combo (rows of ratios).
    Special groups: deductible x factor, ratios + increment (at most 1), their own cap."""
    m = len(ratios)
    d = plan_combo.deductible
    upper = np.array([*edges, np.inf])
    cap = np.full(m, np.inf if plan_combo.cap is None else plan_combo.cap)
    general = Schedule(np.array([d, *edges]), upper, ratios, cap)
    s = space_special
    sd = d * s.deductible_factor
    keep = upper > sd  # bands wholly below the special deductible drop out
    special = Schedule(np.array([sd, *edges])[keep] if keep.all() else
                       np.concatenate([[sd], upper[keep][:-1]]), upper[keep],
                       np.minimum(ratios[:, keep] + s.ratio_increment, 1.0),
                       np.full(m, np.inf if s.cap is None else s.cap))
    return general, special


def special_rules(space: PlanSpace) -> SpecialRules:
    """The space's special-group rules as a plan holds them."""
    s = space.special
    return SpecialRules(s.deductible_factor, s.ratio_increment, s.cap)


def space_schedules(space: PlanSpace, combo: Combo, ratios: np.ndarray
                    ) -> tuple[Schedule, Schedule]:
    """The two schedules of plans of the space sharing a combo (rows of ratios)."""
    return schedules(combo, np.atleast_2d(ratios), special_rules(space), space.bands.edges)


def schedules_of(plan: Plan) -> tuple[Schedule, Schedule]:
    """The two schedules of one plan (each with one row)."""
    return schedules(Combo(plan.deductible, plan.cap), np.array([plan.ratios]),
                     plan.special, plan.band_edges)


class Group:
    """The claimants of one kind of member in the Forecast: Lam(t) = sum of claimants x
    E[min(X, t)] over its cohorts (CNY), evaluated exactly and cached by point."""

    def __init__(self, forecast: Forecast, mask: np.ndarray):
        self.severities = [s for s, m in zip(forecast.severities, mask, strict=True) if m]
        self.n = forecast.cohorts["claimants"].to_numpy(float)[mask]
        self.mean = float(sum(n * s.mean() for n, s in zip(self.n, self.severities,
                                                             strict=True)))
        self._cache: dict[float, float] = {}

    def lam(self, t: np.ndarray) -> np.ndarray:
        """Lam at each point of t (CNY); inf gives the expected total cost."""
        from forecasting.models.severity import lev_matrix  # loaded with the severities

        t = np.atleast_1d(np.asarray(t, dtype="float64"))
        new = np.unique(t[np.isfinite(t)])
        new = new[[x not in self._cache for x in new.tolist()]] if self._cache else new
        if new.size and self.severities:
            values = self.n @ lev_matrix(self.severities, new)
            self._cache.update(zip(new.tolist(), np.asarray(values).tolist(), strict=True))
        elif new.size:
            self._cache.update(dict.fromkeys(new.tolist(), 0.0))
        return np.array([self.mean if not np.isfinite(x) else self._cache[x]
                         for x in t.tolist()])

    def survival(self, t: float) -> float:
        """Expected claimants with annual cost above t: dLam/dt (from the right), exactly,
        from each cohort's distribution (a difference of Lam over a fixed step of money
        would be a different share of the costs in each money unit)."""
        if not np.isfinite(t):
            return 0.0
        return float(sum(n * (1.0 - float(s.cdf(t))) for n, s in
                         zip(self.n, self.severities, strict=True)))

    def payout(self, sched: Schedule) -> np.ndarray:
        """Expected total payout (CNY) of each plan of the schedule to this group."""
        x = sched.x_cap
        out = np.zeros(len(x))
        lam_x = self.lam(np.where(np.isfinite(x), x, np.inf))
        for k in range(len(sched.lower)):
            lo = np.minimum(sched.lower[k], x)
            hi = np.minimum(sched.upper[k], x)
            lam_lo = np.where(lo == x, lam_x, self.lam(np.full(1, sched.lower[k]))[0])
            lam_hi = np.where(hi == x, lam_x, self.lam(np.full(1, sched.upper[k]))[0])
            out += sched.ratios[:, k] * (lam_hi - lam_lo)
        return out

    def above(self, deductible: float) -> float:
        """Expected eligible cost above `deductible`, summed over the group's claimants."""
        return float(self.mean - self.lam(np.array([deductible]))[0])


@dataclass(frozen=True)
class Prices:
    """Exact figures of many plans sharing a combo (one entry per ratio row), CNY."""

    combo: Combo
    ratios: np.ndarray
    general: Schedule
    special: Schedule
    payout: np.ndarray        # expected payout, both groups
    above: float              # expected eligible cost above each member's deductible
    scenario_payout: np.ndarray | None = None  # (m, n_scenarios)


class Pricer:
    """Prices plans of a space on a Forecast (and its scenarios) exactly."""

    def __init__(self, forecast: Forecast, space: PlanSpace,
                 scenarios: ScenarioSet | None = None):
        self.forecast, self.space = forecast, space
        special = forecast._special()
        self.groups = (Group(forecast, ~special), Group(forecast, special))
        self.scenarios = scenarios
        self._sums = None if scenarios is None else scenario_sums(scenarios)

    def price(self, combo: Combo, ratios: np.ndarray, with_scenarios: bool = False
              ) -> Prices:
        """The figures of the plans of one combo (one per row of ratios), the space's
        special-group rules."""
        ratios = np.atleast_2d(np.asarray(ratios, dtype="float64"))
        general, special = space_schedules(self.space, combo, ratios)
        return self._figures(combo, ratios, general, special, with_scenarios)

    def price_plan(self, plan: Plan, with_scenarios: bool = False) -> Prices:
        """The figures of one plan (its own special rules)."""
        general, special = schedules_of(plan)
        return self._figures(Combo(plan.deductible, plan.cap), np.array([plan.ratios]),
                             general, special, with_scenarios)

    def _figures(self, combo: Combo, ratios: np.ndarray, general: Schedule, special: Schedule,
                 with_scenarios: bool) -> Prices:
        g, s = self.groups
        payout = g.payout(general) + s.payout(special)
        above = g.above(general.lower[0]) + s.above(special.lower[0])
        scen = None
        if with_scenarios:
            if self._sums is None:
                raise ValueError("pricing scenario payouts needs scenarios")
            scen = sum(sums.payout(sched) for sums, sched in
                       zip(self._sums, (general, special), strict=True))
        return Prices(combo, ratios, general, special, payout, above, scen)


def scenario_sums(sc: ScenarioSet) -> tuple[ScenarioSums, ScenarioSums]:
    """The sums of ordinary and special members, built once per scenario set (kept on it:
    every proposal of a run prices the same scenarios)."""
    found = sc.__dict__.get("_ciplan_sums")
    if found is None:
        special = sc.special[sc.cohort]
        found = tuple(ScenarioSums(sc, special == flag, sc.group_floor(flag))
                      for flag in (False, True))
        object.__setattr__(sc, "_ciplan_sums", found)
    return found


class ScenarioSums:
    """S_s(t) = sum over one group's simulated costs in scenario s of min(cost, t), for any
    t, and the payouts of schedules in every scenario. Costs are sorted once per
    scenario; new points cost one vectorised search per scenario."""

    def __init__(self, sc: ScenarioSet, who: np.ndarray, floor: float):
        """`who`: which costs are the group's; `floor`: above which it holds them all."""
        self.n, self.floor = sc.n, floor
        scen = sc.scenario[who]
        order = np.argsort(scen, kind="stable")  # a radix sort on integers
        start = np.searchsorted(scen[order], np.arange(sc.n + 1))
        del scen  # tens of millions of rows: each copy freed as soon as it is used
        cost = sc.cost[who][order]
        del order
        for a, b in itertools.pairwise(start):
            cost[a:b].sort()  # in place: the parts are views of one array, not copies
        self.parts = [cost[a:b] for a, b in itertools.pairwise(start)]
        self.cums = [np.concatenate([[0.0], np.cumsum(p)]) for p in self.parts]
        self._cache: dict[float, np.ndarray] = {}

    def at(self, t: np.ndarray) -> np.ndarray:
        """S_s(t_j) for every scenario s and point t_j: shape (n, len(t)), CNY."""
        t = np.atleast_1d(np.asarray(t, dtype="float64"))
        new = [x for x in np.unique(t).tolist() if x not in self._cache]
        if new:
            pts = np.array(new)
            cols = np.empty((self.n, len(pts)))
            for s, (part, cum) in enumerate(zip(self.parts, self.cums, strict=True)):
                pos = np.searchsorted(part, pts)
                cols[s] = cum[pos] + np.where(np.isfinite(pts), pts, 0.0) * (len(part) - pos)
            self._cache.update({x: cols[:, j] for j, x in enumerate(new)})
        return np.stack([self._cache[x] for x in t.tolist()], axis=1)

    def above(self, t: float) -> np.ndarray:
        """How many of each scenario's costs lie above t: dS_s/dt (from the right), exactly,
        shape (n,)."""
        if not np.isfinite(t):
            return np.zeros(self.n)
        return np.array([len(p) - np.searchsorted(p, t, side="right") for p in self.parts],
                        dtype="float64")

    def payout(self, sched: Schedule) -> np.ndarray:
        """(m, n) total payout of each plan in each scenario (CNY)."""
        if sched.lower[0] < self.floor - tol(self.floor):
            raise ValueError(f"scenarios hold costs above {self.floor:g} only; the plan's "
                             f"deductible is {sched.lower[0]:g}")
        x = sched.x_cap
        at_x = self.at(x).T  # (m, n)
        out = np.zeros((len(x), self.n))
        for k in range(len(sched.lower)):
            lo, hi = self.at(np.array([sched.lower[k], sched.upper[k]])).T
            top = np.where((x <= sched.upper[k])[:, None], at_x, hi[None, :])
            bottom = np.where((x <= sched.lower[k])[:, None], at_x, lo[None, :])
            out += sched.ratios[:, k:k + 1] * (top - bottom)
        return out
