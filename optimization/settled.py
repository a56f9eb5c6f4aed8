"""Questions on the insurer's result after the contract settles, with the contract's
corridor among the choices (DESIGN §6).

Settlement is piecewise linear in each scenario's loss but, with layers written as shares
of premium, not monotone in the premium, so nothing is assumed: for every plan of a
stepped space, every candidate set of terms and every premium of the negotiating grid,
each scenario is settled exactly and the best is taken (optimal by exhaustion). Money in
the data's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.errors import UserError
from optimization.context import Context
from optimization.contract import settle
from optimization.objectives import cvar_rows
from optimization.pricing import Pricer, combos, plan_of, ratio_grid, tol
from optimization.rules import Rule, allowed
from optimization.search import Candidate, Searched, _better, space_size
from optimization.space import ContractTerms


@dataclass(frozen=True)
class SettledCandidate(Candidate):
    """A candidate with the contract terms it was settled under."""

    terms: ContractTerms | None = None


def _insured(ctx: Context, pricer: Pricer) -> np.ndarray:
    """Each scenario's insured count (the forecast's when enrolment is not drawn)."""
    if ctx.scenario_insured is not None:
        return ctx.scenario_insured
    return np.full(pricer.scenarios.n, ctx.insured)


def _premiums(ctx: Context, objective: str) -> np.ndarray:
    prem = ctx.space.premium
    if prem.fixed is not None and objective == "min-loss-settled":
        return np.array([prem.fixed])
    lo, hi = prem.grid()
    return np.round(np.arange(lo, hi + prem.step / 2, prem.step), 9)


def _judge(ctx: Context, objective: str, after: np.ndarray, income: np.ndarray,
           fund: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(allowed, score) of each plan at one premium, from its settled scenarios (m, n)."""
    loss = -after.mean(axis=1)
    ok = np.ones(len(after), dtype=bool)
    budget = ctx.space.contract.fund_topup_budget
    if budget is not None:
        ok &= fund.mean(axis=1) <= budget
    if objective == "break-even-settled":
        ok &= loss <= tol(income.mean())  # rounding: a share of premium income
    if objective == "risk-settled":
        risk = ctx.space.risk
        if risk.appetite == "cvar":
            ok &= cvar_rows(-after, risk.cvar_level) <= (
                risk.cvar_share * income.mean() + tol(income.mean()))
        else:
            ok &= (after < 0).mean(axis=1) <= risk.prob_loss_max + 1e-12
    return ok, loss


def settled_search(ctx: Context, objective: str, pricer: Pricer, rules: list[Rule],
                   keep: bool) -> Searched:
    """The best (plan, premium, terms) for an objective after settlement (module doc)."""
    if ctx.space.bands.step <= 0 and not keep:
        raise UserError("questions after settlement need stepped ratios: set [bands] step "
                        "above 0")
    plans = space_size(ctx)
    if not keep and plans > ctx.space.solver.enumeration_limit:
        raise UserError(f"questions after settlement price every plan of the space, and it "
                        f"holds {plans:,}, more than solver.enumeration_limit "
                        f"({ctx.space.solver.enumeration_limit:,}): coarsen [bands] step")
    insured = _insured(ctx, pricer)
    o = ctx.space.costs
    terms_list = ctx.space.contract.candidates()
    best, key, priced = None, None, 0
    for combo in [None] if keep else combos(ctx.space, ctx.status_quo):
        prices = (pricer.price_plan(ctx.status_quo, with_scenarios=True) if keep else
                  pricer.price(combo, ratio_grid(ctx.space, ctx.status_quo),
                               with_scenarios=True))
        ok_plan = np.ones(len(prices.payout), dtype=bool) if keep else allowed(
            ctx, prices, [r for r in rules if r.premium is None])
        if not ok_plan.any():
            continue
        rows = np.flatnonzero(ok_plan)
        pay = prices.scenario_payout[rows]
        for terms in terms_list:
            for p in _premiums(ctx, objective):
                priced += len(rows)
                income = p * insured
                opex = o.opex_fixed + o.opex_share * income
                s = settle(pay, income[None, :], opex[None, :], terms)
                ok, loss = _judge(ctx, objective, s.after, income, s.fund_share)
                if not ok.any():
                    continue
                score = loss if objective == "min-loss-settled" else np.full(len(loss), p)
                i = int(np.flatnonzero(ok)[np.lexsort((-prices.payout[rows][ok],
                                                       np.round(score[ok], 6)))[0]])
                cand = (float(score[i]), float(prices.payout[rows][i]), float(p))
                found_here = _better(cand, key)
                if found_here:
                    key = cand
                    plan = (ctx.status_quo if keep else
                            plan_of(ctx.space, prices.combo, prices.ratios[rows[i]], p))
                    best = SettledCandidate(plan.with_(premium_per_capita=float(p)),
                                            prices.combo, float(p), cand[1], prices.above,
                                            float(loss[i]), pay[i], terms)
                if objective != "min-loss-settled":
                    break  # premiums ascend: a higher one cannot be lower
    return Searched(best, priced, "exhaustive, after settlement", True)
