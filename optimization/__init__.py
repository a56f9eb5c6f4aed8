"""Optimisation layer: the plan space, the MILP, the exact evaluator and the negotiator's
questions (min-loss, break-even, CVaR, shadow prices, frontier). Imports forecasting only."""

from forecasting._lazy import exports

_NAMES = {
    "evaluate_plan": "optimization.evaluate",
    "frontier": "optimization.solve",
    "InfeasibleError": "optimization.milp",
    "load_space": "optimization.space",
    "OBJECTIVES": "optimization.objectives",
    "optimize": "optimization.solve",
    "member_impact": "optimization.evaluate",
    "Optimum": "optimization.solve",
    "PlanKPIs": "optimization.evaluate",
    "PlanSpace": "optimization.space",
    "scenario_set": "optimization.solve",
    "shadow_prices": "optimization.solve",
    "SOLVERS": "optimization.space",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
