"""Shadow prices: what one more unit of a rule's right-hand side is worth, in the
objective's units (money of expected loss, or of premium per capita, in the
forecast's money unit).

They come from the linear programme at the optimum with the discrete choices fixed: the
proposal's deductible and cap, the ratios free to move continuously. The programme is
solved at the continuous optimum of that (deductible, cap) (branch and bound, exact), with
the payout linearised exactly there: dP/dr_k = E[w_k(X) 1{X < x_cap}], members already at
the cap gain nothing from a higher ratio. Its duals then predict small moves of each
right-hand side (tested by moving them). The cap itself is a term, not a rule: its
sensitivity is the expected number of members at the cap.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pulp

from optimization.bnb import combo_search
from optimization.context import Context
from optimization.milp import LP, Row, solver
from optimization.objectives import OBJECTIVES, Objective, add_to_lp
from optimization.pricing import Combo, Pricer
from optimization.rules import Rule, active, lp_rows


def _gradient(sched, group) -> tuple[float, np.ndarray]:
    """(payout, dP/dr) of one group at one plan's schedule (money, money per unit of
    ratio): members at the cap gain nothing from a higher ratio, dLam/dt = survival."""
    x = float(sched.x_cap[0])
    payout = float(group.payout(sched)[0])
    lo = group.lam(np.minimum(sched.lower, x))
    hi = group.lam(np.minimum(sched.upper, x))
    grad = (hi - lo) - group.survival(x) * _width(sched, x)
    return payout, np.asarray(grad, dtype="float64")


def _scenario_gradient(sums, sched) -> tuple[np.ndarray, np.ndarray]:
    """(payout (n,), dP/dr (n, K)) of one group in each scenario at one plan's schedule,
    as `_gradient`: dS_s/dt is the number of the scenario's costs above t."""
    x = float(sched.x_cap[0])
    K = len(sched.lower)
    at = sums.at(np.concatenate([np.minimum(sched.lower, x), np.minimum(sched.upper, x)]))
    grad = at[:, K:] - at[:, :K]
    grad = grad - sums.above(x)[:, None] * _width(sched, x)[None, :]
    return sums.payout(sched)[0], grad


def _width(sched, x: float) -> np.ndarray:
    """Cost inside each band at the cap level x (0 for no cap: nobody reaches it)."""
    if not np.isfinite(x):
        return np.zeros(len(sched.lower))
    return np.clip(x, sched.lower, sched.upper) - sched.lower


def _priced(pricer: Pricer, plan, at: np.ndarray):
    """The plan's figures at ratios `at` on the plan's own terms: its band edges and
    special-group rules (today's, for a proposal keeping today's benefits, may differ
    from the space's)."""
    return pricer.price_plan(plan.with_(ratios=tuple(float(x) for x in at)))


def local_lp(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule], plan,
             at: np.ndarray, keep: bool) -> LP:
    """The programme at `plan` with ratios `at` (see module doc), everything continuous."""
    space = ctx.space
    prob = pulp.LpProblem("ciplan_duals", pulp.LpMinimize)
    b = space.bands
    r = [prob.add_variable(f"r{k}", 0.0, 1.0) for k in range(len(at))]
    prem = space.premium
    fixed = prem.fixed is not None and not obj.free
    p = float(prem.fixed) if fixed else prob.add_variable("premium", 0.0)
    prices = _priced(pricer, plan, at)
    const, terms = 0.0, []
    for group, sched in zip(pricer.groups, (prices.general, prices.special), strict=True):
        payout, grad = _gradient(sched, group)
        rr, base = r[len(r) - len(grad):], at[len(at) - len(grad):]
        const += payout - float(grad @ base)
        terms += [rk * float(gk) for rk, gk in zip(rr, grad, strict=True)]
    payout = const + pulp.lpSum(terms)
    lp = LP(ctx, prices.combo, prob, r, p, payout, payout, prices.above)
    if keep:
        for k, rk in enumerate(r):
            lp.add(Row(f"keep_ratio_{k}", rk, "==", float(at[k]), 0.01, "point of ratio",
                       f"ratio of band {k + 1} kept at today's"))
        rows = lp_rows(ctx, lp, [x for x in rules if x.premium or x.name == "premium_budget"])
    else:
        bounds = [Row(f"ratio_max_{k}", rk, "<=", b.ratio_max, 0.01, "point of ratio",
                      "highest ratio") for k, rk in enumerate(r)]
        bounds += [Row(f"ratio_min_{k}", rk, ">=", b.ratio_min, 0.01, "point of ratio",
                       "lowest ratio") for k, rk in enumerate(r)]
        rows = bounds + (lp_rows(ctx, lp, rules) or [])
    for row in rows or []:
        lp.add(row)
    add_to_lp(ctx, obj, lp, _linear_scenarios(pricer, lp, prices, at)
              if obj.scenarios else None)
    return lp


def _linear_scenarios(pricer: Pricer, lp: LP, prices, at: np.ndarray) -> list:
    """Each scenario's payout linearised exactly at the plan, as the expected payout is:
    members at the cap in that scenario gain nothing (money)."""
    const = np.zeros(pricer.scenarios.n)
    grads = []
    for sums, sched in zip(pricer._sums, (prices.general, prices.special), strict=True):
        payout, grad = _scenario_gradient(sums, sched)
        K = grad.shape[1]
        const += payout - grad @ at[len(at) - K:]
        grads.append((grad, lp.ratios[len(lp.ratios) - K:]))
    return [float(const[s]) + pulp.lpSum(rk * float(d[s, k]) for d, rr in grads
                                         for k, rk in enumerate(rr)) for s in range(len(const))]


def continuous_optimum(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
                       combo: Combo, start: np.ndarray) -> np.ndarray:
    """The ratios of the best plan of this combo with continuous ratios (exact)."""
    bands = ctx.space.bands.model_copy(update={"step": 0.0})
    space = ctx.space.model_copy(update={"bands": bands})
    cctx = replace(ctx, space=space)
    found, _, _, _ = combo_search(cctx, obj, pricer, rules, combo, None)
    return np.array(found.plan.ratios) if found is not None else start


def shadow_prices(objective: str, plan, ctx: Context, pricer: Pricer, keep: bool
                  ) -> pd.DataFrame:
    """One row per constraint of the programme (see module doc), and one for the cap; units
    in the context's money unit."""
    obj = OBJECTIVES[objective]
    rules = active(ctx.space)
    combo = Combo(plan.deductible, plan.cap)
    at = np.array(plan.ratios)
    if not keep:
        at = continuous_optimum(ctx, obj, pricer, rules, combo, at)
    lp = local_lp(ctx, obj, pricer, rules, plan, at, keep)
    lp.problem.solve(solver(ctx.space, "highs"))
    per = ctx.money("{cur} of premium per capita" if obj.premium == "low"
                    else "{cur} of expected loss")
    ratios_at = " / ".join(f"{x:.4f}" for x in at)
    rows = []
    for name, row in lp.rows.items():
        con = lp.problem.get_constraint_by_name(name)
        pi, slack = float(con.pi or 0.0), float(con.slack or 0.0)
        rows.append({"constraint": name, "meaning": row.words, "dual": pi, "slack": slack,
                     "binding": abs(slack) < 1e-6 and abs(pi) > 1e-9,
                     "per_unit": pi * row.size, "unit": ctx.money(row.unit),
                     "objective_unit": per, "ratios_at": ratios_at})
    value = _cap_sensitivity(ctx, pricer, plan, at, obj)
    rows.append({"constraint": "cap", "meaning": "the annual payout cap", "dual": value,
                 "slack": 0.0, "binding": combo.cap is not None, "per_unit": value,
                 "unit": ctx.money("{cur} of cap"), "objective_unit": per,
                 "ratios_at": ratios_at})
    return pd.DataFrame(rows)


def _cap_sensitivity(ctx: Context, pricer: Pricer, plan, at: np.ndarray, obj: Objective
                     ) -> float:
    """d objective / d cap: one more unit of cap pays each member at the cap one unit."""
    prices = _priced(pricer, plan, at)
    at_cap = 0.0
    for group, sched in zip(pricer.groups, (prices.general, prices.special), strict=True):
        if np.isfinite(sched.x_cap[0]) and sched.cap[0] == (plan.cap or np.inf):
            at_cap += group.survival(float(sched.x_cap[0]))
    return at_cap if obj.premium == "high" else at_cap / ((1 - ctx.opex_share) * ctx.insured)
