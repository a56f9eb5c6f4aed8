"""Shadow prices: what one more unit of a rule's right-hand side is worth, in the
objective's units (CNY of expected loss, or CNY of premium per capita).

They come from the linear programme at the optimum with the discrete choices fixed: the
proposal's deductible and cap, the ratios free to move continuously. The programme is
solved at the continuous optimum of that (deductible, cap) (branch and bound, exact), with
the payout linearised exactly there: dP/dr_k = E[w_k(X) 1{X < x_cap}], members already at
the cap gain nothing from a higher ratio. Its duals then predict small moves of each
right-hand side (tested by moving them). The cap itself is a term, not a rule: its
sensitivity is the expected number of members at the cap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pulp

from optimization.bnb import combo_search
from optimization.context import Context
from optimization.milp import LP, Row, solver
from optimization.objectives import OBJECTIVES, Objective, add_to_lp
from optimization.pricing import Combo, Pricer
from optimization.rules import Rule, active, lp_rows


def _gradient(pricer: Pricer, sched, group, inc: float, ratios: np.ndarray
              ) -> tuple[float, np.ndarray]:
    """(payout, dP/dr) of one group at one plan's schedule (CNY, CNY per unit of ratio)."""
    x = float(sched.x_cap[0])
    payout = float(group.payout(sched)[0])
    lo = group.lam(np.minimum(sched.lower, x))
    hi = group.lam(np.minimum(sched.upper, x))
    width = np.clip(x, sched.lower, sched.upper) - sched.lower if np.isfinite(x) else 0.0
    grad = (hi - lo) - group.survival(x) * width
    return payout, np.asarray(grad, dtype="float64")


def local_lp(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule], combo: Combo,
             at: np.ndarray, keep: bool) -> LP:
    """The programme at ratios `at` (see module doc), everything continuous."""
    space = ctx.space
    prob = pulp.LpProblem("ciplan_duals", pulp.LpMinimize)
    b = space.bands
    r = [prob.add_variable(f"r{k}", 0.0, 1.0) for k in range(len(at))]
    prem = space.premium
    fixed = prem.fixed is not None and not obj.free
    p = float(prem.fixed) if fixed else prob.add_variable("premium", 0.0)
    prices = pricer.price(combo, at[None, :])
    inc = space.special.ratio_increment
    const, terms = 0.0, []
    for g, (group, sched) in enumerate(zip(pricer.groups, (prices.general, prices.special),
                                           strict=True)):
        payout, grad = _gradient(pricer, sched, group, inc if g else 0.0, at)
        rr, base = r[len(r) - len(grad):], at[len(at) - len(grad):]
        const += payout - float(grad @ base)
        terms += [rk * float(gk) for rk, gk in zip(rr, grad, strict=True)]
    payout = const + pulp.lpSum(terms)
    lp = LP(ctx, combo, prob, r, p, payout, payout, prices.above)
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
    add_to_lp(ctx, obj, lp, _linear_scenarios(ctx, pricer, lp, prices)
              if obj.scenarios else None)
    return lp


def _linear_scenarios(ctx: Context, pricer: Pricer, lp: LP, prices) -> list:
    """Each scenario's payout linearised exactly at the plan, as the expected payout is:
    members at the cap in that scenario gain nothing (CNY)."""
    n = pricer.scenarios.n
    const = np.zeros(n)
    grads = []
    inc = ctx.space.special.ratio_increment
    for g, (sums, sched) in enumerate(zip(pricer._sums, (prices.general, prices.special),
                                          strict=True)):
        x = float(sched.x_cap[0])
        K = len(sched.lower)
        at = sums.at(np.concatenate([np.minimum(sched.lower, x), np.minimum(sched.upper, x)]))
        delta = at[:, K:] - at[:, :K]                       # (n, K)
        if np.isfinite(x):
            above = (sums.at(np.array([x + 1.0]))[:, 0] - sums.at(np.array([x]))[:, 0])
            delta = delta - above[:, None] * (np.clip(x, sched.lower, sched.upper)
                                              - sched.lower)[None, :]
        const += sums.payout(sched)[0] - delta @ sched.ratios[0] + (inc if g else 0.0) \
            * delta.sum(1)
        grads.append((delta, lp.ratios[len(lp.ratios) - K:]))
    return [float(const[s]) + pulp.lpSum(rk * float(d[s, k]) for d, rr in grads
                                         for k, rk in enumerate(rr)) for s in range(n)]


def continuous_optimum(ctx: Context, obj: Objective, pricer: Pricer, rules: list[Rule],
                       combo: Combo, start: np.ndarray) -> np.ndarray:
    """The ratios of the best plan of this combo with continuous ratios (exact)."""
    bands = ctx.space.bands.model_copy(update={"step": 0.0})
    space = ctx.space.model_copy(update={"bands": bands})
    cctx = Context(space, ctx.status_quo, ctx.insured, ctx.effective_floor,
                   ctx.scenario_insured)
    found, _, _, _ = combo_search(cctx, obj, pricer, rules, combo, None)
    return np.array(found.plan.ratios) if found is not None else start


def shadow_prices(objective: str, plan, ctx: Context, pricer: Pricer, keep: bool
                  ) -> pd.DataFrame:
    """One row per constraint of the programme (see module doc), and one for the cap."""
    obj = OBJECTIVES[objective]
    rules = active(ctx.space)
    combo = Combo(plan.deductible, plan.cap)
    at = np.array(plan.ratios)
    if not keep:
        at = continuous_optimum(ctx, obj, pricer, rules, combo, at)
    lp = local_lp(ctx, obj, pricer, rules, combo, at, keep)
    lp.problem.solve(solver(ctx.space, "highs"))
    per = "CNY of premium per capita" if obj.premium == "low" else "CNY of expected loss"
    rows = []
    for name, row in lp.rows.items():
        con = lp.problem.get_constraint_by_name(name)
        pi, slack = float(con.pi or 0.0), float(con.slack or 0.0)
        rows.append({"constraint": name, "meaning": row.words, "dual": pi, "slack": slack,
                     "binding": abs(slack) < 1e-6 and abs(pi) > 1e-9,
                     "per_unit": pi * row.size, "unit": row.unit, "objective_unit": per,
                     "ratios_at": " / ".join(f"{x:.4f}" for x in at)})
    rows.append(_cap_row(ctx, pricer, combo, at, per, obj))
    return pd.DataFrame(rows)


def _cap_row(ctx: Context, pricer: Pricer, combo: Combo, at: np.ndarray, per: str,
             obj: Objective) -> dict:
    """d objective / d cap: one more CNY of cap pays each member at the cap one CNY."""
    prices = pricer.price(combo, at[None, :])
    at_cap = 0.0
    for group, sched in zip(pricer.groups, (prices.general, prices.special), strict=True):
        if np.isfinite(sched.x_cap[0]) and sched.cap[0] == (combo.cap or np.inf):
            at_cap += group.survival(float(sched.x_cap[0]))
    value = at_cap if obj.premium == "high" else at_cap / ((1 - ctx.opex_share) * ctx.insured)
    return {"constraint": "cap", "meaning": "the annual payout cap", "dual": value,
            "slack": 0.0, "binding": combo.cap is not None, "per_unit": value,
            "unit": "CNY of cap", "objective_unit": per,
            "ratios_at": " / ".join(f"{x:.4f}" for x in at)}
