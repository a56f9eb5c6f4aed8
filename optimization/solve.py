"""Solve the negotiator's questions on a Forecast (DESIGN §4): min-loss, break-even, cvar
and risk; why a request is infeasible, in the configuration's units; the loss-benefit
frontier. Every reported figure is the exact evaluator's, and "Optimal" is said only when
the search proved it (`optimization.search`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.forecast import Forecast, ScenarioSet
from forecasting.scheme.plan import Plan
from optimization.context import Context
from optimization.evaluate import PlanKPIs, evaluate_plan
from optimization.milp import InfeasibleError
from optimization.objectives import OBJECTIVES, Objective
from optimization.pricing import Pricer, tol
from optimization.rules import Rule, active, today_breaks
from optimization.search import Candidate, Searched, enumerate_space, keep_today, space_size
from optimization.space import ContractTerms, PlanSpace

AGREE = 1e-3  # the search's payout and the evaluator's may differ by this share only


def agree(search: float, evaluator: float) -> bool:
    """The search's figure and the evaluator's are the same but for rounding: within AGREE
    of the larger, a share (a fixed amount of money would be a different share in each
    money unit, and all of a plan's payout in a portfolio counted in millions)."""
    return abs(evaluator - search) <= AGREE * max(abs(search), abs(evaluator))


@dataclass(frozen=True)
class Optimum:
    """The best plan with the evaluator's KPIs and how the search knows it is best."""

    objective: str
    plan: Plan
    kpis: PlanKPIs
    search_loss: float        # the search's expected loss at the plan (CNY)
    status: str               # "Optimal" only when proved
    proved: bool
    method: str               # exhaustive, branch and bound, today's benefits
    plans_priced: int
    gap: float                # proved optimality gap (CNY; 0 for exhaustive search)
    solver: str
    seconds: float
    keep_benefits: bool
    notes: tuple[str, ...] = ()
    terms: ContractTerms | None = None  # the settlement terms (chosen, for settled questions)
    # the rules today's plan itself breaks (rules.today_breaks), each with "kept": the plan
    # keeps today's benefits and so breaks it too (else the plan meets it and today's
    # plan does not: what the plan gives up against today's may be that rule's doing)
    today_breaks: tuple[dict, ...] = ()


def scenario_set(forecast: Forecast, space: PlanSpace, status_quo: Plan,
                 seed: int = 0) -> ScenarioSet:
    """Scenarios deep enough for every deductible the space can choose: each cohort's
    costs above the lowest deductible its members can get (special groups' lower; the
    ordinary members' costs between the two pay nothing under any plan of the space)."""
    ordinary = min([*space.deductible.candidates, status_quo.deductible])
    special = ordinary * min(space.special.deductible_factor,
                             status_quo.special.deductible_factor)
    floors = np.where(forecast._special(), special, ordinary)
    return forecast.scenarios(space.risk.scenarios, seed, floor=floors)


def context(forecast: Forecast, space: PlanSpace, status_quo: Plan,
            floor: float | None = None, scenarios: ScenarioSet | None = None) -> Context:
    """What the rules and objectives read; with scenarios that draw enrolment, each
    scenario's insured count (its premium income moves with it)."""
    floor = space.constraints.effective_ratio_floor if floor is None else floor
    insured = None if scenarios is None else getattr(scenarios, "insured", None)
    return Context(space, status_quo, forecast.insured, floor,
                   None if insured is None else np.asarray(insured, dtype="float64"),
                   forecast.currency)


def search(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
           keep: bool) -> Searched:
    """The search that proves the answer for this space."""
    if obj.settled:
        from optimization.settled import settled_search

        return settled_search(ctx, obj.name, pricer, rules, keep)
    if keep:
        return keep_today(ctx, obj, pricer, rules)
    if space_size(ctx) <= ctx.space.solver.enumeration_limit:
        return enumerate_space(ctx, obj, pricer, rules)
    from optimization.bnb import branch_and_bound

    return branch_and_bound(ctx, obj, pricer, rules)


# branch and bound found no plan but left parts of the space unsearched: neither answer
# is proved, and the rules are not to be called in conflict
UNPROVED = ("no plan found, and not proved that none exists: branch and bound left parts of "
            "the space too narrow to split unsearched; raise solver.enumeration_limit or "
            "coarsen bands.step so that every plan is priced")


def optimize(forecast: Forecast, space: PlanSpace, status_quo: Plan, objective: str,
             solver_name: str | None = None, scenarios: ScenarioSet | None = None,
             keep_benefits: bool | None = None, floor: float | None = None) -> Optimum:
    """The best plan for `objective` (see objectives.OBJECTIVES).

    break-even and risk keep today's benefits unless keep_benefits=False (they answer
    "what premium?"); min-loss and cvar choose the benefits under the rules."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
    obj = OBJECTIVES[objective]
    keep = obj.premium == "low" if keep_benefits is None else keep_benefits
    if obj.scenarios and scenarios is None:
        scenarios = scenario_set(forecast, space, status_quo)
    if solver_name is not None:
        space = space.model_copy(update={"solver": space.solver.model_copy(
            update={"name": solver_name})})
    t0 = time.perf_counter()
    ctx = context(forecast, space, status_quo, floor, scenarios if obj.scenarios else None)
    rules = active(space)
    pricer = Pricer(forecast, space, scenarios if obj.scenarios else None)
    found = search(ctx, obj, pricer, rules, keep)
    if found.best is None and not found.proved:
        raise InfeasibleError(UNPROVED, {"kind": "unproved", "changes": []})
    if found.best is None:
        raise InfeasibleError(*explain_infeasible(ctx, obj, pricer, rules, keep))
    seconds = time.perf_counter() - t0
    best = found.best
    terms = getattr(best, "terms", None) or space.contract.terms()
    kpis = evaluate_plan(best.plan, forecast, space.costs, scenarios,
                         levels=space.report.cost_levels, cvar_level=space.risk.cvar_level,
                         terms=terms)
    proved = found.proved and agree(best.payout, kpis.expected_payout)
    status = "Optimal" if proved else ("Not proved: the search's price and the evaluator's "
                                       "differ" if found.proved else "Not proved")
    breaks = tuple(b | {"kept": keep and not b["premium"]} for b in today_breaks(
        ctx, pricer.price_plan(ctx.status_quo), rules))
    return Optimum(objective, best.plan, kpis, best.loss, status, proved, found.method,
                   found.plans, found.gap, space.solver.name, seconds, keep,
                   _notes(ctx, obj, kpis), terms, breaks)


def _notes(ctx: Context, obj: Objective, kpis: PlanKPIs) -> tuple[str, ...]:
    """What the negotiator must hear beside the plan."""
    out = []
    share = ctx.space.contract.profit_cap_share
    income = kpis.premium_income
    if obj.premium == "low" and ctx.space.constraints.profit_cap and (
            -kpis.expected_loss > share * income + tol(income)):
        out.append(f"at {kpis.premium_per_capita:g} per capita the expected surplus is "
                   f"{-kpis.expected_loss / kpis.premium_income:.1%} of premium income, above "
                   f"the {share:.0%} the contract lets the insurer keep: the excess goes back "
                   "to the fund")
    if obj.premium == "high" and kpis.expected_loss > 0:
        out.append(f"no plan of the space stops the loss at {kpis.premium_per_capita:g} per "
                   f"capita: the best still loses {kpis.expected_loss:,.0f} a year "
                   f"({kpis.expected_loss / kpis.premium_income:.1%} of premium income)")
    return tuple(out)


# ---------------------------------------------------------------- infeasibility


def explain_infeasible(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
                       keep: bool) -> tuple[str, dict]:
    """The rules in conflict, each with the single change (in its own units) that would
    allow a plan, the premium included: a sentence, and the same as data ({"kind": "any",
    "pairs" or "none", "changes": [{"rule", "now", "to"} or {"rule", "off"} or
    {"pair": [premium change, rule name]}]})."""
    changes = []
    for rule in rules:
        others = [r for r in rules if r is not rule]
        found = search(ctx, obj, pricer, others, keep)
        if found.best is not None:
            changes.append(_change(ctx, rule, _least(ctx, obj, pricer, rules, keep,
                                                     THRESHOLDS.get(rule.name), found)))
    premium = _premium_change(ctx, obj, pricer, rules, keep)
    if premium:
        changes.append(premium)
    if not changes:  # two at once: the premium budget and one rule
        for rule in rules:
            both = _premium_change(ctx, obj, pricer, [r for r in rules if r is not rule], keep)
            if both:
                changes.append((f"{both[0]} together with relaxing {rule.name} "
                                f"({ctx.money(rule.unit)})",
                                {"pair": [both[1], rule.name]}))
        data = [c[1] for c in changes]
        if changes:
            return ("no plan meets every constraint, and no single change would allow one; "
                    "these pairs of changes would: " + "; ".join(c[0] for c in changes),
                    {"kind": "pairs", "changes": data})
        return (f"no plan meets every constraint for the {obj.what}, and no change of one "
                "rule and of the premium budget would allow one", {"kind": "none",
                                                                   "changes": []})
    return ("no plan meets every constraint; any one of these changes would allow one: "
            + "; ".join(c[0] for c in changes), {"kind": "any",
                                                 "changes": [c[1] for c in changes]})


@dataclass(frozen=True)
class Threshold:
    """A setting a single change moves: its value now, the question with it moved, a found
    plan's own value of it (the setting that plan needs), and whether relaxing it lowers it."""

    get: Callable[[Context], float]
    put: Callable[[Context, float], Context]
    measure: Callable[[Context, Candidate], float]
    lowers: bool
    says: Callable[[float, float], str] = lambda now, to: f"from {now:g} to {to:g}"
    snap: Callable[[Context, float], float] = lambda c, v: v  # onto the values it may take
    precision: Callable[[Context], float] = lambda c: LEAST


def _with(ctx: Context, section: str, **fields) -> Context:
    part = getattr(ctx.space, section).model_copy(update=fields)
    return replace(ctx, space=ctx.space.model_copy(update={section: part}))


THRESHOLDS: dict[str, Threshold] = {
    "effective_ratio": Threshold(
        lambda c: c.effective_floor, lambda c, v: replace(c, effective_floor=v),
        lambda c, k: k.payout / k.above, True,
        lambda now, to: f"lower the floor from {now:.1%} to {to:.1%} "
                        f"({(now - to) * 100:.2f} points)"),
    "nominal_ratio": Threshold(
        lambda c: c.space.constraints.nominal_ratio_floor,
        lambda c, v: _with(c, "constraints", nominal_ratio_floor=v),
        lambda c, k: min(k.plan.ratios), True,
        lambda now, to: f"lower the floor from {now:.0%} to {to:.0%}"),
    "deductible_income": Threshold(
        lambda c: c.space.constraints.deductible_income_share,
        lambda c, v: _with(c, "constraints", deductible_income_share=v),
        lambda c, k: k.plan.deductible / c.space.costs.disposable_income, False,
        lambda now, to: f"allow a deductible of {to:.1%} of disposable income "
                        f"(now {now:.0%})"),
    "profit_cap": Threshold(
        lambda c: c.space.contract.profit_cap_share,
        lambda c, v: _with(c, "contract", profit_cap_share=v),
        lambda c, k: -k.loss / (k.premium * c.insured), False,
        lambda now, to: f"allow a surplus of {to:.2%} of premium (now {now:.0%})"),
}
LEAST = 1e-4  # the least change of a share is found to within this (0.01 point)


def _least(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule], keep: bool,
           th: Threshold | None, found: Searched) -> Searched:
    """The plan of the least change of a setting that allows one, from `found` (a plan
    allowed once the setting is relaxed enough): bisection between the setting now (no
    plan) and the setting found's plan needs, each plan found moving that end to its own
    value; within the setting's precision. The plan the objective prefers once a rule is
    dropped is not the one the least change lets through (min-loss without the floor of
    the effective ratio takes the meanest plan: "lower the floor from 95 % to 54 %" when
    91 % allowed one). An unproved search ends the bisection where it stands."""
    if th is None:
        return found
    bad = th.get(ctx)
    good = th.measure(ctx, found.best)
    while abs(bad - good) > th.precision(ctx):
        mid = th.snap(ctx, (good + bad) / 2)
        if mid in (good, bad):
            break
        f = search(th.put(ctx, mid), obj, pricer, rules, keep)
        if f.best is None:
            if not f.proved:
                break
            bad = mid
            continue
        value = th.measure(ctx, f.best)  # at least as far as mid but for rounding
        found, good = f, (max(value, mid) if th.lowers else min(value, mid))
    return found


def _change(ctx: Context, rule: Rule, found: Searched) -> tuple[str, dict]:
    """The least change of `rule` that lets the plan found without it through: a phrase
    and {"rule", "now", "to"} (shares as fractions) or {"rule", "off"}."""
    th = THRESHOLDS.get(rule.name)
    if th is None:
        return (f"{rule.name}: switch it off ({ctx.money(rule.unit)})",
                {"rule": rule.name, "off": True})
    now, to = th.get(ctx), th.measure(ctx, found.best)
    return f"{rule.name}: {th.says(now, to)}", {"rule": rule.name, "now": now, "to": to}


def _premium_change(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
                    keep: bool) -> tuple[str, dict] | None:
    """The premium per capita that would allow a plan, when the budget is what blocks: a
    phrase and {"rule": "premium" (a fixed premium), "premium_max" or "premium_min",
    "now", "to"} (per capita)."""
    prem = ctx.space.premium
    wide = prem.model_copy(update={"min": prem.step, "max": prem.max * 100,
                                   "fixed": None})
    space = ctx.space.model_copy(update={"premium": wide})
    found = search(replace(ctx, space=space), obj, pricer, rules, keep)
    if found.best is None:
        return None
    p, step = found.best.premium, prem.step
    fixed = prem.fixed is not None and not obj.free
    now = prem.fixed if fixed else (prem.max if p > prem.max else prem.min)
    field = "fixed" if fixed else ("max" if p > prem.max else "min")
    # the far end of the widened budget may be what the objective picks (the highest
    # premium for min-loss): the least move of the premium that allows a plan, on the step
    th = Threshold(lambda c: now,
                   lambda c, v: _with(c, "premium", **({"min": wide.min, "max": wide.max}
                                                        if fixed else {}), **{field: v}),
                   lambda c, k: k.premium, p < now,
                   snap=lambda c, v: float(np.round(v / step) * step),
                   precision=lambda c: step / 2)
    p = _least(ctx, obj, pricer, rules, keep, th, found).best.premium
    if fixed:
        return _fixed_premium_change(prem, p)
    edge = "max" if p > prem.max else "min"
    return (f"premium budget: {edge} {getattr(prem, edge):g} -> {p:g} per capita",
            {"rule": f"premium_{edge}", "now": getattr(prem, edge), "to": p})


def _fixed_premium_change(prem, p: float) -> tuple[str, dict]:
    """A fixed premium moved to `p`; outside the budget (which a fixed premium must lie
    in) the budget's edge moves with it, or the change could not be made as named."""
    edge = "max" if p > prem.max else "min" if p < prem.min else None
    text = (f"premium: {p:g} per capita instead of the fixed {prem.fixed:g} "
            f"(budget {prem.min:g}-{prem.max:g})")
    change = {"rule": "premium", "now": prem.fixed, "to": p}
    if edge is None:
        return text, change
    return (f"{text}, the budget's {edge} moved to {p:g} with it", change | {"budget": edge})


# ---------------------------------------------------------------- frontier


def frontier(forecast: Forecast, space: PlanSpace, status_quo: Plan, floors: np.ndarray,
             solver_name: str | None = None) -> pd.DataFrame:
    """The least expected loss at each effective-ratio floor (the loss-benefit frontier),
    each point with every term of its plan and how it was proved. One pricer serves every
    floor (its exact layer prices are cached)."""
    if solver_name is not None:
        space = space.model_copy(update={"solver": space.solver.model_copy(
            update={"name": solver_name})})
    obj, rules = OBJECTIVES["min-loss"], active(space)
    pricer = Pricer(forecast, space)
    rows = []
    for floor in floors:
        found = search(context(forecast, space, status_quo, floor), obj, pricer, rules, False)
        if found.best is None:
            rows.append({"floor": floor, "feasible": False})
            continue
        p = found.best.plan
        k = evaluate_plan(p, forecast, space.costs, levels=space.report.cost_levels)
        rows.append({"floor": floor, "feasible": True,
                     "status": "Optimal" if found.proved else "Not proved",
                     "expected_loss": k.expected_loss, "effective_ratio": k.effective_ratio,
                     "expected_payout": k.expected_payout,
                     "premium_per_capita": p.premium_per_capita, "deductible": p.deductible,
                     "cap": "none" if p.cap is None else p.cap,
                     **{f"ratio_{j + 1}": r for j, r in enumerate(p.ratios)}})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- shadow prices


def shadow_prices(opt: Optimum, forecast: Forecast, space: PlanSpace, status_quo: Plan,
                  scenarios: ScenarioSet | None = None) -> pd.DataFrame:
    """Each constraint's dual at the optimum, per natural unit (see optimization.duals)."""
    from optimization.duals import shadow_prices as duals

    obj = OBJECTIVES[opt.objective]
    if obj.settled:  # settlement is not a linear programme here: no duals to report
        return pd.DataFrame(columns=["constraint", "meaning", "dual", "slack", "binding",
                                     "per_unit", "unit", "objective_unit", "ratios_at"])
    if obj.scenarios and scenarios is None:
        scenarios = scenario_set(forecast, space, status_quo)
    ctx = context(forecast, space, status_quo)
    pricer = Pricer(forecast, space, scenarios if obj.scenarios else None)
    return duals(opt.objective, opt.plan, ctx, pricer, opt.keep_benefits)
