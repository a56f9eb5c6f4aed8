"""Settlement per scenario against hand-worked figures, at and around every boundary."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.contract import settle, summary
from optimization.objectives import cvar_rows
from optimization.space import ContractTerms

# income 1000, no operating cost unless said: the result before settlement is 1000 - P
CORRIDOR = ContractTerms(surplus_keep=0.05, surplus_return=1.0,
                         loss_layers=((0.05, 0.10, 0.5), (0.10, None, 1.0)))


@pytest.mark.parametrize(("payout", "returned", "fund", "after"), [
    # surpluses: kept up to 5 % of premium (50), the rest returned
    (800.0, 150.0, 0.0, 50.0),      # surplus 200: 150 back
    (950.0, 0.0, 0.0, 50.0),        # exactly at the keep boundary
    (949.0, 1.0, 0.0, 50.0),        # 1 above it
    (1000.0, 0.0, 0.0, 0.0),        # break even
    # losses: insurer 0-5 % (0-50), half of 5-10 % (50-100), the fund above 10 % (100)
    (1030.0, 0.0, 0.0, -30.0),      # inside the retention
    (1050.0, 0.0, 0.0, -50.0),      # at its end
    (1070.0, 0.0, 10.0, -60.0),     # 20 into the shared layer: fund 10
    (1100.0, 0.0, 25.0, -75.0),     # at its end: fund 25
    (1150.0, 0.0, 75.0, -75.0),     # 50 above it: the fund bears all of it
])
def test_corridor_by_hand(payout, returned, fund, after):
    s = settle(np.array([payout]), np.array([1000.0]), np.array([0.0]), CORRIDOR)
    assert s.returned[0] == pytest.approx(returned)
    assert s.fund_share[0] == pytest.approx(fund)
    assert s.after[0] == pytest.approx(after)
    assert s.before[0] == pytest.approx(1000.0 - payout)


def test_stop_loss_policy_shock_and_opex_cap_by_hand():
    terms = ContractTerms(surplus_keep=0.03, surplus_return=0.5, stop_loss=0.08,
                          policy_shock=0.1, opex_cap_share=0.03)
    # P 1200, opex 50 (cap 30 recognised), income 1000: before = -250
    # contractual result = 1000 - (1200 - 120) - 30 = -110; loss 110 > stop 80 -> fund 30
    s = settle(np.array([1200.0]), np.array([1000.0]), np.array([50.0]), terms)
    assert s.before[0] == pytest.approx(-250.0)
    assert s.fund_share[0] == pytest.approx(30.0 + 120.0)
    assert s.after[0] == pytest.approx(-100.0)
    # a surplus: P 800 -> result 1000 - 720 - 30 = 250; keep 30; half of 220 returned
    s = settle(np.array([800.0]), np.array([1000.0]), np.array([50.0]), terms)
    assert s.returned[0] == pytest.approx(110.0)
    assert s.after[0] == pytest.approx(1000 - 800 - 50 - 110 + 80)


def test_summary_equals_the_scenario_table():
    rng = np.random.default_rng(0)
    payout = rng.gamma(50, 20, 2000)
    s = settle(payout, np.full(2000, 1000.0), np.full(2000, 40.0), CORRIDOR)
    k = summary(s, 0.95)
    assert k["expected_loss_after"] == pytest.approx(-s.after.mean())
    assert k["prob_loss_after"] == pytest.approx((s.after < 0).mean())
    loss = -s.after
    # Rockafellar-Uryasev by its definition, eta over a fine grid
    etas = np.linspace(loss.min(), loss.max(), 20001)
    ru = min(e + np.maximum(loss - e, 0).mean() / 0.05 for e in etas)
    assert k["cvar_loss_after"] == pytest.approx(ru, rel=1e-4)
    assert k["cvar_loss_after"] == pytest.approx(cvar_rows(loss[None, :], 0.95)[0])
    assert k["fund_topup"] == pytest.approx(s.fund_share.mean())


def test_layers_must_not_overlap():
    with pytest.raises(ValueError, match="loss_layers"):
        ContractTerms(loss_layers=((0.05, 0.10, 0.5), (0.08, None, 1.0)))


def test_settled_optimum_equals_enumeration_over_the_terms(small_forecast, space,
                                                          status_quo):
    """Today's benefits, the corridor chosen among candidates with the premium: the
    optimiser's answer equals a loop over every candidate and premium by the evaluator."""
    from optimization.evaluate import evaluate_plan
    from optimization.solve import optimize, scenario_set

    contract = space.contract.model_copy(update={
        "retention_candidates": (0.0, 0.03, 0.08), "fund_share_candidates": (0.3, 0.7),
        "fund_topup_budget": 60_000.0})
    sp = space.model_copy(update={"contract": contract, "risk": space.risk.model_copy(
        update={"scenarios": 300})})
    sc = scenario_set(small_forecast, sp, status_quo, seed=2)
    opt = optimize(small_forecast, sp, status_quo, "break-even-settled", scenarios=sc)
    best = None
    lo, hi = sp.premium.grid()
    for terms in contract.candidates():
        for p in np.arange(lo, hi + 0.25, 0.5):
            k = evaluate_plan(status_quo.with_(premium_per_capita=float(p)), small_forecast,
                              sp.costs, sc, terms=terms)
            s = k.settlement
            if s["expected_loss_after"] <= 1e-6 and s["fund_topup"] <= 60_000.0:
                best = p if best is None else min(best, p)
                break
    assert best is not None
    assert opt.plan.premium_per_capita == pytest.approx(best)
    assert opt.kpis.settlement["expected_loss_after"] <= 1e-6
    assert opt.terms in contract.candidates()
