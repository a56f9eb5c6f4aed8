"""The contract settles the insurer's year (DESIGN §6): what is returned to the fund and what
the fund bears, scenario by scenario.

Per scenario, with premium income I, payouts P and operating cost C (money of the data):
- the result before settlement is I - P - C (positive: a surplus);
- the contractual result R counts only the operating cost the contract recognises (at most
  `opex_cap_share` x I) and leaves out the payouts a policy change caused
  (`policy_shock` x P: the fund bears them, 政策性亏损);
- a surplus R above `surplus_keep` x I is returned to the fund at `surplus_return`
  (超额结余返还);
- a loss -R is shared in layers written as shares of premium: in the layer [a, b) the fund
  bears its `fund_share` of the part of the loss between a x I and b x I (风险调节); a
  stop-loss caps what the insurer bears at `stop_loss` x I.
The insurer's result after settlement = before - returned + fund's share + policy shock.
Every piece is piecewise linear in the loss, so it stays linear in an optimisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimization.space import ContractTerms


@dataclass(frozen=True)
class Settlement:
    """Each scenario's settlement (arrays of the same shape, money of the data)."""

    before: np.ndarray      # insurer's result before settlement (surplus > 0)
    returned: np.ndarray    # surplus returned to the fund (>= 0)
    fund_share: np.ndarray  # the fund's share of losses, stop-loss and policy shock (>= 0)

    @property
    def after(self) -> np.ndarray:
        """The insurer's result after settlement (surplus > 0)."""
        return self.before - self.returned + self.fund_share

    @property
    def fund(self) -> np.ndarray:
        """The fund's net payment to the insurer: top-up minus refund."""
        return self.fund_share - self.returned


def layer_share(loss: np.ndarray, income: np.ndarray, layers) -> np.ndarray:
    """What the fund bears of a loss (>= 0) under loss-sharing layers (from, to, share),
    bounds as shares of premium income (to None: no upper end)."""
    out = np.zeros(np.shape(loss))
    for lo, hi, share in layers:
        top = np.inf if hi is None else hi
        inside = np.clip(loss, lo * income, top * income) - lo * income
        out = out + share * inside
    return out


def settle(payout: np.ndarray, income: np.ndarray, opex: np.ndarray,
           terms: ContractTerms) -> Settlement:
    """The settlement of every scenario (see module doc). Arrays broadcast together."""
    payout, income, opex = np.broadcast_arrays(*(np.asarray(x, dtype="float64")
                                                 for x in (payout, income, opex)))
    before = income - payout - opex
    shock = terms.policy_shock * payout
    recognised = opex if terms.opex_cap_share is None else np.minimum(
        opex, terms.opex_cap_share * income)
    result = income - (payout - shock) - recognised
    returned = terms.surplus_return * np.maximum(result - terms.surplus_keep * income, 0.0)
    loss = np.maximum(-result, 0.0)
    shared = layer_share(loss, income, terms.loss_layers)
    if terms.stop_loss is not None:
        shared = shared + np.maximum(loss - shared - terms.stop_loss * income, 0.0)
    return Settlement(before, returned, shared + shock)


def summary(s: Settlement, level: float) -> dict[str, float]:
    """Expected values, P(loss), CVaR of the loss and the 5-95 % range, before and after
    settlement, and the fund's expected top-up and refund (money of the data). The range
    is the 90 % one that holds the expected value (`forecasting.forecast.interval`): after
    settlement most scenarios may sit at the kept surplus, with the mean above them."""
    from forecasting.forecast import interval
    from optimization.objectives import cvar_rows

    out = {}
    for name, result in (("before", s.before), ("after", s.after)):
        loss = -np.asarray(result, dtype="float64").ravel()
        out[f"expected_loss_{name}"] = float(loss.mean())
        out[f"prob_loss_{name}"] = float((loss > 0).mean())
        out[f"cvar_loss_{name}"] = float(cvar_rows(loss[None, :], level)[0])
        lo, hi = interval(loss, float(loss.mean()))
        out[f"loss_p05_{name}"], out[f"loss_p95_{name}"] = float(lo), float(hi)
    out["fund_topup"] = float(np.mean(s.fund_share))
    out["fund_refund"] = float(np.mean(s.returned))
    return out
