"""What every rule, objective and search reads about the question being asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.config import DEFAULT_CURRENCY
from forecasting.scheme.plan import Plan
from optimization.space import PlanSpace


def in_money(unit: str, currency: str) -> str:
    """The unit of a rule or row ("{cur} of cap", "point of ratio") in `currency`."""
    return unit.replace("{cur}", currency)


@dataclass(frozen=True)
class Context:
    """What every rule reads: the space, today's plan, the insured count, the floor of the
    effective ratio (moved by the frontier), the money unit of every amount (the
    forecast's: units of rules and shadow prices are named in it)."""

    space: PlanSpace
    status_quo: Plan
    insured: float
    effective_floor: float
    scenario_insured: np.ndarray | None = None  # per scenario, when enrolment is drawn
    currency: str = DEFAULT_CURRENCY

    @property
    def opex_share(self) -> float:
        return self.space.costs.opex_share

    @property
    def opex_fixed(self) -> float:
        return self.space.costs.opex_fixed

    def money(self, unit: str) -> str:
        """A unit in words with the money unit put in ("{cur} of cap" -> "HKD of cap")."""
        return in_money(unit, self.currency)
