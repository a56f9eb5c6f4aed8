"""The negotiator's questions, one registry entry each.

Every rule and objective is monotone in the premium per capita p: the expected loss
payout + fixed opex - (1 - opex share) x insured x p falls as p rises, the profit cap
bounds p from above, and break-even and the risk limits bound it from below. So for a
given benefit plan the premiums allowed form an interval, and each objective takes one
end of it: the highest (least loss) or the lowest (least premium). Money in CNY.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pulp

from forecasting.errors import UserError
from optimization.context import Context
from optimization.milp import LP, Row
from optimization.pricing import Prices


def cvar_rows(values: np.ndarray, level: float) -> np.ndarray:
    """Rockafellar-Uryasev CVaR of each row of equally likely values:
    min over eta of eta + E[(V - eta)+] / (1 - level), exact (the minimum is at a value)."""
    v = np.sort(np.atleast_2d(values), axis=1)
    n = v.shape[1]
    suffix = np.cumsum(v[:, ::-1], axis=1)[:, ::-1]           # sum of v[j:]
    above = np.concatenate([suffix[:, 1:], np.zeros((len(v), 1))], axis=1)
    count = n - 1 - np.arange(n)                                # values after position j
    f = v + (above - count[None, :] * v) / ((1 - level) * n)
    return f.min(axis=1)


def _net(ctx: Context) -> float:
    """Premium income net of the opex share, per CNY of premium per capita."""
    return (1 - ctx.opex_share) * ctx.insured


def _break_even(ctx: Context, p: Prices) -> np.ndarray:
    return (p.payout + ctx.opex_fixed) / _net(ctx)


def _lowest_on_grid(ctx: Context, p: Prices, holds) -> np.ndarray:
    """The lowest premium of the negotiating grid at which `holds(losses, premiums)` is true
    for each plan (inf: none), by bisection: every condition here gets easier as the
    premium rises. losses: (plans, scenarios) at each plan's premium."""
    step = ctx.space.premium.step
    lo, hi = ctx.space.premium.grid()
    grid = np.round(np.arange(lo, hi + step / 2, step), 9)
    insured = ctx.scenario_insured
    left = np.zeros(len(p.payout), dtype=int)
    right = np.full(len(p.payout), len(grid))
    while (left < right).any():
        mid = np.minimum((left + right) // 2, len(grid) - 1)
        prem = grid[mid]
        income = prem[:, None] * insured[None, :]
        loss = p.scenario_payout + ctx.opex_fixed + ctx.opex_share * income - income
        ok = holds(loss, prem) & (left < right)
        right = np.where(ok, mid, right)
        left = np.where(~ok & (left < right), mid + 1, left)
    return np.where(left < len(grid), grid[np.minimum(left, len(grid) - 1)], np.inf)


def _cvar_budget(ctx: Context, p: Prices) -> np.ndarray:
    risk = ctx.space.risk
    if ctx.scenario_insured is not None:
        return _lowest_on_grid(ctx, p, lambda loss, prem: cvar_rows(loss, risk.cvar_level)
                               <= risk.cvar_budget)
    tail = cvar_rows(p.scenario_payout, risk.cvar_level)
    return (tail + ctx.opex_fixed - risk.cvar_budget) / _net(ctx)


def _appetite(ctx: Context, p: Prices) -> np.ndarray:
    """The lowest premium meeting the insurer's risk appetite, per plan."""
    risk = ctx.space.risk
    if ctx.scenario_insured is not None:
        mean_n = float(np.mean(ctx.scenario_insured))
        if risk.appetite == "cvar":
            return _lowest_on_grid(ctx, p, lambda loss, prem: cvar_rows(loss, risk.cvar_level)
                                   <= risk.cvar_share * prem * mean_n)
        return _lowest_on_grid(ctx, p, lambda loss, prem: (loss > 0).mean(axis=1)
                               <= risk.prob_loss_max + 1e-12)
    if risk.appetite == "cvar":  # CVaR(loss) <= share x income, CVaR moves 1:1 with p
        tail = cvar_rows(p.scenario_payout, risk.cvar_level)
        return (tail + ctx.opex_fixed) / ((1 - ctx.opex_share + risk.cvar_share)
                                          * ctx.insured)
    # P(loss > 0) <= q: at most floor(q n) scenarios may lose
    need = np.sort(p.scenario_payout, axis=1)[:, ::-1] + ctx.opex_fixed
    k = int(np.floor(risk.prob_loss_max * need.shape[1] + 1e-9))
    return need[:, k] / _net(ctx) if k < need.shape[1] else np.full(len(need), -np.inf)


@dataclass(frozen=True)
class Objective:
    """premium: "high" takes the highest premium the rules allow for a plan (least
    expected loss), "low" the lowest; free: the premium is what it asks for (else the
    space's fixed premium, if any, holds); lower: the least premium it requires per plan."""

    name: str
    premium: str
    free: bool
    scenarios: bool
    lower: Callable[[Context, Prices], np.ndarray] | None
    what: str  # in words, for messages
    settled: bool = False  # asked of the result after the contract settles

    def score(self, loss: np.ndarray, premium: np.ndarray) -> np.ndarray:
        """What is minimised: the expected loss, or the premium per capita."""
        return loss if self.premium == "high" else premium


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("min-loss", "high", False, False, None, "least expected loss"),
    Objective("break-even", "low", True, False, _break_even,
              "lowest premium with expected loss <= 0"),
    Objective("cvar", "high", False, True, _cvar_budget,
              "least expected loss with CVaR of the loss within the budget"),
    Objective("risk", "low", True, True, _appetite,
              "lowest premium meeting the insurer's risk appetite"),
    Objective("min-loss-settled", "high", False, True, None,
              "least expected loss after settlement", settled=True),
    Objective("break-even-settled", "low", True, True, None,
              "lowest premium with expected loss after settlement <= 0", settled=True),
    Objective("risk-settled", "low", True, True, None,
              "lowest premium meeting the risk appetite after settlement", settled=True),
)}


def add_to_lp(ctx: Context, obj: Objective, lp: LP, scenario_payouts: list | None) -> None:
    """The objective and its own rows in a combo's programme: break-even, or the
    Rockafellar-Uryasev rows of CVaR over the scenarios' payout expressions (CNY)."""
    net = (1 - ctx.opex_share) * ctx.insured
    loss = lp.payout_lo + ctx.opex_fixed - net * lp.premium
    if obj.name == "break-even":
        lp.add(Row("break_even", loss, "<=", 0.0, 1.0, "{cur} of loss", "expected loss"))
    if obj.scenarios:
        risk = ctx.space.risk
        if obj.name == "risk" and risk.appetite != "cvar":
            raise UserError("the prob_loss appetite needs stepped ratios within "
                            "[solver] enumeration_limit: set [bands] step above 0")
        prob, n = lp.problem, len(scenario_payouts)
        eta = prob.add_variable("cvar_eta")
        xi = [prob.add_variable(f"cvar_xi{s}", lowBound=0) for s in range(n)]
        heads = (np.full(n, ctx.insured) if ctx.scenario_insured is None
                 else ctx.scenario_insured)
        for s, pay in enumerate(scenario_payouts):  # each scenario's own premium income
            net_s = (1 - ctx.opex_share) * float(heads[s])
            prob += xi[s] >= pay + ctx.opex_fixed - net_s * lp.premium - eta, f"cvar_s{s}"
        tail = eta + pulp.lpSum(xi) / ((1 - risk.cvar_level) * n)
        if obj.name == "cvar":
            lp.add(Row("cvar_budget", tail, "<=", risk.cvar_budget, 1.0, "{cur} of CVaR",
                       "CVaR budget"))
        else:
            lp.add(Row("risk_appetite", tail - risk.cvar_share * float(np.mean(heads))
                       * lp.premium,
                       "<=", 0.0, 1.0, "{cur} of CVaR", "CVaR within the share of premium"))
    goal = loss if obj.premium == "high" else lp.premium
    lp.problem.setObjective(goal if not isinstance(goal, float) else pulp.lpSum([goal]))
