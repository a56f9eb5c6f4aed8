"""An independent brute force to check the optimiser against: every plan of a small space,
priced by the evaluator plan by plan (`evaluate_plan`, `ScenarioSet.payouts`), every rule
checked from its definition, every premium of the negotiating grid tried."""

from __future__ import annotations

import itertools

import numpy as np

from forecasting.scheme.plan import Plan, SpecialRules, member_payouts
from optimization.evaluate import cvar, evaluate_plan


def plans(space, status_quo: Plan):
    """Every (deductible, cap, ratios) of the space with today's always among them."""
    b, s = space.bands, space.special
    values = np.round(np.arange(b.ratio_min, b.ratio_max + 1e-9, b.step), 10)
    deds = sorted({*space.deductible.candidates, status_quo.deductible})
    caps = {*space.cap.candidates, status_quo.cap}
    tuples = set(itertools.product(values, repeat=len(b.edges) + 1)) | {status_quo.ratios}
    for d, cap, ratios in itertools.product(deds, caps, sorted(tuples)):
        yield Plan(1.0, d, b.edges, ratios, cap,
                   SpecialRules(s.deductible_factor, s.ratio_increment, s.cap))


def no_worse(plan: Plan, today: Plan) -> bool:
    """At every annual cost up to 3 M (a fine grid and every breakpoint of both plans), for
    ordinary and special members, the plan pays at least today's."""
    points = [np.arange(0, 3_000_000, 250.0)]
    for p in (plan, today, plan.for_special_group(), today.for_special_group()):
        x = p.capped_cost()
        points.append(np.array([p.deductible, *p.band_edges, *([x] if np.isfinite(x) else [])]))
    grid = np.unique(np.concatenate(points))
    for special in (False, True):
        flag = np.full(len(grid), special)
        if (member_payouts(plan, grid, flag) < member_payouts(today, grid, flag) - 0.01).any():
            return False
    return True


def rules_hold(plan: Plan, forecast, space, today: Plan, floor: float) -> bool:
    """Every rule from its definition; the payout-free ones first (they are cheap)."""
    c = space.constraints
    if c.nominal_ratio and min(plan.ratios) < c.nominal_ratio_floor - 1e-9:
        return False
    if c.deductible_income and plan.deductible > (
            c.deductible_income_share * space.costs.disposable_income):
        return False
    if c.ratios_increasing and (np.diff(plan.ratios) < -1e-12).any():
        return False
    if c.no_worse and not no_worse(plan, today):
        return False
    if c.effective_ratio:
        return (forecast.expected_payout(plan) / forecast.expected_above_deductible(plan)
                >= floor - 1e-9)
    return True


def premiums(space, objective: str) -> np.ndarray:
    prem = space.premium
    if prem.fixed is not None and objective in ("min-loss", "cvar"):
        return np.array([prem.fixed])
    lo, hi = prem.grid()
    return np.round(np.arange(lo, hi + 1e-9, prem.step), 6)


def best(forecast, space, today: Plan, objective: str, scenarios=None, floor=None,
         keep: bool = False):
    """(score, plan) of the best plan by brute force, None when no plan is allowed.
    Score: expected loss (min-loss, cvar) or premium per capita (break-even, risk)."""
    floor = space.constraints.effective_ratio_floor if floor is None else floor
    found = None
    candidates = [today] if keep else plans(space, today)
    for plan in candidates:
        if not keep and not rules_hold(plan, forecast, space, today, floor):
            continue
        kpis = evaluate_plan(plan, forecast, space.costs)
        scen = None if scenarios is None else scenarios.payouts(plan)
        drawn = None if scenarios is None else getattr(scenarios, "insured", None)
        heads = forecast.insured if drawn is None else np.asarray(drawn, dtype="float64")
        for p in premiums(space, objective):
            income = p * forecast.insured
            opex = space.costs.opex_fixed + space.costs.opex_share * income
            loss = kpis.expected_payout + opex - income
            income_s = p * heads  # each scenario's premium income (enrolment drawn)
            opex_s = space.costs.opex_fixed + space.costs.opex_share * income_s
            # the premium questions are asked without the cap on the expected surplus
            if space.constraints.profit_cap and objective in ("min-loss", "cvar") and -loss > (
                    space.contract.profit_cap_share * income + 1e-6):
                continue
            if objective == "break-even" and loss > 1e-6:
                continue
            if objective == "cvar" and cvar(scen + opex_s - income_s, space.risk.cvar_level) > (
                    space.risk.cvar_budget + 1e-6):
                continue
            if objective == "risk" and not _appetite(scen + opex_s - income_s,
                                                     float(np.mean(income_s)), space):
                continue
            score = p if objective in ("break-even", "risk") else loss
            key = (round(score, 6), -kpis.expected_payout)
            if found is None or key < found[0]:
                found = (key, plan.with_(premium_per_capita=float(p)))
    return None if found is None else (found[0][0], found[1])


def _appetite(losses: np.ndarray, income: float, space) -> bool:
    r = space.risk
    if r.appetite == "cvar":
        return cvar(losses, r.cvar_level) <= r.cvar_share * income + 1e-6
    return (losses > 0).mean() <= r.prob_loss_max + 1e-12
