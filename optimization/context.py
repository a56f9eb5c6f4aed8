"""What every rule, objective and search reads about the question being asked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.scheme.plan import Plan
from optimization.space import PlanSpace


@dataclass(frozen=True)
class Context:
    """What every rule reads: the space, today's plan, the insured count, the floor of the
    effective ratio (moved by the frontier)."""

    space: PlanSpace
    status_quo: Plan
    insured: float
    effective_floor: float
    scenario_insured: np.ndarray | None = None  # per scenario, when enrolment is drawn

    @property
    def opex_share(self) -> float:
        return self.space.costs.opex_share

    @property
    def opex_fixed(self) -> float:
        return self.space.costs.opex_fixed
