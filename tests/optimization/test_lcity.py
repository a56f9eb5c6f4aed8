"""The optimiser on the calibrated L-city forecast of 2022, at the 2021 premium."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.data.dataset import load_data
from forecasting.models.claims import ClaimsModel
from forecasting.scheme.plan import member_payouts
from optimization.evaluate import evaluate_plan
from optimization.solve import frontier, optimize, scenario_set
from pipelines.workflows.builtin import builtin_data


@pytest.fixture(scope="module")
def lcity_forecast():
    return ClaimsModel().fit(load_data(builtin_data()).cells).forecast(2022)


@pytest.mark.slow
def test_proposals_on_the_default_city(lcity_forecast, space, status_quo):
    """A, B and C of the default city, each checked from its definition."""
    fc = lcity_forecast
    before = evaluate_plan(status_quo, fc, space.costs)
    income = 60.0 * fc.insured
    implied = fc.expected_payout(status_quo) + 0.04 * income - income
    assert before.expected_loss == pytest.approx(implied, rel=1e-12)
    assert before.expected_loss > 0  # today's plan loses money in 2022
    # A: at today's premium, nobody worse off at any cost (a cap cut is not allowed)
    a = optimize(fc, space, status_quo, "min-loss")
    assert a.proved and a.plan.premium_per_capita == 60.0
    assert a.kpis.expected_loss <= before.expected_loss + 1e-6
    costs = np.linspace(0, 3e6, 30_001)
    for special in (False, True):
        flag = np.full(len(costs), special)
        assert (member_payouts(a.plan, costs, flag)
                >= member_payouts(status_quo, costs, flag) - 0.01).all()
    assert a.search_loss == pytest.approx(a.kpis.expected_loss, rel=1e-3)
    # B: today's benefits; the closed-form break-even premium rounded up to the step
    b = optimize(fc, space, status_quo, "break-even")
    assert (b.plan.ratios, b.plan.cap, b.plan.deductible) == (
        status_quo.ratios, status_quo.cap, status_quo.deductible)
    exact = fc.expected_payout(status_quo) / (fc.insured * (1 - space.costs.opex_share))
    assert b.plan.premium_per_capita == pytest.approx(np.ceil(exact / 0.5) * 0.5)
    assert b.kpis.expected_loss <= 0
    # C: today's benefits at the lowest premium meeting the risk appetite, above B's
    sc = scenario_set(fc, space, status_quo, seed=1)
    c = optimize(fc, space, status_quo, "risk", scenarios=sc)
    assert c.plan.ratios == status_quo.ratios
    assert c.plan.premium_per_capita >= b.plan.premium_per_capita
    assert c.kpis.cvar95_loss <= space.risk.cvar_share * c.kpis.premium_income + 1.0
    lower = c.plan.with_(premium_per_capita=c.plan.premium_per_capita - 0.5)
    k = evaluate_plan(lower, fc, space.costs, sc)
    assert k.cvar95_loss > space.risk.cvar_share * k.premium_income


@pytest.mark.slow
def test_frontier_is_monotone(lcity_forecast, space, status_quo):
    table = frontier(lcity_forecast, space, status_quo, np.linspace(0.60, 0.66, 5))
    ok = table[table["feasible"]]
    assert len(ok) >= 3
    # a higher benefit floor never lowers the minimal loss
    assert (np.diff(ok["expected_loss"]) >= -1e-3).all()
    assert (ok["effective_ratio"] >= ok["floor"] - 1e-9).all()
    assert {"deductible", "cap", "premium_per_capita", "ratio_1", "ratio_4"} <= set(ok.columns)
