"""The reimbursement plan and its payout on a member's annual eligible cost.

Payout g(x) = min(cap, sum_k r_k * |[max(d, e_k), e_{k+1}) ∩ [0, x)|): nothing up to the
deductible d, ratio r_k on the part of the cost inside band k, at most `cap` a year.
Because g is increasing, min(cap, g(x)) = g(min(x, x_cap)), so the capped payout is still
a sum of layers: this is what lets a Forecast price any plan exactly from limited
expected values.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class SpecialRules:
    """Terms for low-income, destitute and poverty-relief members (特殊群体).

    deductible_factor: their deductible as a share of the general one (policy: 0.5).
    ratio_increment: added to every band ratio (policy: 0.05), capped at 1.
    cap: their annual payout cap in CNY; None means no cap (waived).
    """

    deductible_factor: float = 0.5
    ratio_increment: float = 0.05
    cap: float | None = None


@dataclass(frozen=True)
class Plan:
    """A critical illness plan: premium per capita (CNY per insured a year) and the benefit.

    band_edges are the annual costs (CNY) where the ratio changes; the first band runs
    from the deductible to band_edges[0], the last from band_edges[-1] upwards, so
    len(ratios) == len(band_edges) + 1. cap is the largest annual payout (CNY), None for none.
    """

    premium_per_capita: float
    deductible: float
    band_edges: tuple[float, ...]
    ratios: tuple[float, ...]
    cap: float | None
    special: SpecialRules = field(default_factory=SpecialRules)

    def __post_init__(self) -> None:
        object.__setattr__(self, "band_edges", tuple(float(e) for e in self.band_edges))
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        problems = plan_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def for_special_group(self) -> Plan:
        """The plan as it applies to special-group members: lower deductible, higher ratios."""
        s = self.special
        deductible = self.deductible * s.deductible_factor
        edges = tuple(e for e in self.band_edges if e > deductible)
        ratios = self.ratios[len(self.ratios) - len(edges) - 1:]
        return Plan(
            premium_per_capita=self.premium_per_capita,
            deductible=deductible,
            band_edges=edges,
            ratios=tuple(min(1.0, r + s.ratio_increment) for r in ratios),
            cap=s.cap,
            special=s,
        )

    @property
    def lower_edges(self) -> np.ndarray:
        """Lower edge of each band (CNY): the deductible, then the band edges."""
        return np.array([self.deductible, *self.band_edges])

    @property
    def upper_edges(self) -> np.ndarray:
        """Upper edge of each band (CNY), the last one infinite."""
        return np.array([*self.band_edges, np.inf])

    def uncapped(self, cost: np.ndarray) -> np.ndarray:
        """Payout before the cap for annual eligible costs `cost` (CNY), vectorised."""
        cost = np.asarray(cost, dtype="float64")
        out = np.zeros(cost.shape)
        part = np.empty(cost.shape)
        # band by band, so millions of scenario costs need no (n x bands) temporary; in
        # place, into one buffer: the same operations as r * (clip(cost, lo, hi) - lo)
        for lo, hi, r in zip(self.lower_edges, self.upper_edges, self.ratios, strict=True):
            np.maximum(cost, lo, out=part)
            np.minimum(part, hi, out=part)
            part -= lo
            part *= r
            out += part
        return out

    def capped_cost(self) -> float:
        """The annual cost (CNY) at which the payout reaches the cap; inf without a cap."""
        if self.cap is None:
            return float("inf")
        lower, upper, ratios = self.lower_edges, self.upper_edges, np.array(self.ratios)
        at_lower = np.concatenate([[0.0], np.cumsum(ratios[:-1] * (upper[:-1] - lower[:-1]))])
        k = int(np.searchsorted(at_lower, self.cap, side="right") - 1)
        if ratios[k] == 0:  # the payout stalls below the cap for good
            return float("inf")
        return float(lower[k] + (self.cap - at_lower[k]) / ratios[k])

    def payout(self, cost: np.ndarray) -> np.ndarray:
        """Annual payout (CNY) for annual eligible costs `cost` (CNY)."""
        raw = self.uncapped(cost)
        return raw if self.cap is None else np.minimum(raw, self.cap)

    def with_(self, **changes) -> Plan:
        """A copy with some terms changed (validated again)."""
        return replace(self, **changes)


def plan_problems(plan: Plan) -> list[str]:
    """What is wrong with a plan's terms, as sentences; empty when it is coherent."""
    out = []
    if plan.premium_per_capita < 0:
        out.append(f"premium_per_capita must be >= 0 CNY; got {plan.premium_per_capita:g}")
    if plan.deductible < 0:
        out.append(f"deductible must be >= 0 CNY; got {plan.deductible:g}")
    if len(plan.ratios) != len(plan.band_edges) + 1:
        out.append(f"need one more ratio than band edges; got {len(plan.ratios)} ratios "
                   f"for {len(plan.band_edges)} edges")
    edges = (plan.deductible, *plan.band_edges)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        out.append(f"band edges must rise above the deductible {plan.deductible:g}; "
                   f"got {list(plan.band_edges)}")
    if any(not 0 <= r <= 1 for r in plan.ratios):
        out.append(f"ratios must be in [0, 1]; got {list(plan.ratios)}")
    if plan.cap is not None and plan.cap <= 0:
        out.append(f"cap must be > 0 CNY or none; got {plan.cap:g}")
    return out


def member_payouts(plan: Plan, cost: np.ndarray, special: np.ndarray) -> np.ndarray:
    """Annual payout (CNY) of each member: special-group members get the special terms."""
    cost = np.asarray(cost, dtype="float64")
    special = np.asarray(special, dtype=bool)
    out = plan.payout(cost)
    if special.any():
        out[special] = plan.for_special_group().payout(cost[special])
    return out


def member_deductibles(plan: Plan, special: np.ndarray) -> np.ndarray:
    """Each member's deductible (CNY), halved (by the rule) for special groups."""
    special_deductible = plan.deductible * plan.special.deductible_factor
    return np.where(np.asarray(special, dtype=bool), special_deductible, plan.deductible)
