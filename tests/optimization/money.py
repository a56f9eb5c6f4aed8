"""The same portfolio, plan and plan space counted in another money unit: every amount
times `a` (a = 0.001: thousands; 100: fen)."""

from __future__ import annotations

from dataclasses import replace

from forecasting.forecast import Forecast
from forecasting.scheme.plan import Plan

SCALES = [0.001, 0.01, 1.0, 100.0]


def forecast_in(fc: Forecast, a: float) -> Forecast:
    """The forecast with every cost times a (claimant counts as they are)."""
    severities = tuple(replace(s, parametric=replace(s.parametric,
                                                     scale=s.parametric.scale * a),
                               costs=s.costs * a) for s in fc.severities)
    cohorts = fc.cohorts.copy()
    if "mean_severity" in cohorts:
        cohorts["mean_severity"] = cohorts["mean_severity"] * a
    return replace(fc, severities=severities, cohorts=cohorts,
                   reported_above=fc.reported_above * a)


def _times(x, a):
    return None if x is None else x * a


def plan_in(plan: Plan, a: float) -> Plan:
    """The plan with every money term times a."""
    special = replace(plan.special, cap=_times(plan.special.cap, a))
    return Plan(plan.premium_per_capita * a, plan.deductible * a,
                tuple(e * a for e in plan.band_edges), plan.ratios, _times(plan.cap, a),
                special)


def space_in(space, a: float):
    """The plan space with every money term times a."""
    def part(name, **fields):
        return getattr(space, name).model_copy(update=fields)

    prem = space.premium
    return space.model_copy(update={
        "premium": part("premium", min=prem.min * a, max=prem.max * a,
                        fixed=_times(prem.fixed, a), step=prem.step * a),
        "deductible": part("deductible", candidates=tuple(
            d * a for d in space.deductible.candidates)),
        "bands": part("bands", edges=tuple(e * a for e in space.bands.edges)),
        "cap": part("cap", candidates=tuple(_times(c, a) for c in space.cap.candidates)),
        "special": part("special", cap=_times(space.special.cap, a)),
        "costs": part("costs", opex_fixed=space.costs.opex_fixed * a,
                      disposable_income=space.costs.disposable_income * a),
        "risk": part("risk", cvar_budget=space.risk.cvar_budget * a),
        "report": part("report", cost_levels=tuple(x * a for x in space.report.cost_levels)),
    })
