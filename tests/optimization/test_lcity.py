"""The optimiser on the calibrated L-city forecast of 2022, at the 2021 premium."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.data.dataset import load_data
from forecasting.models.claims import ClaimsModel
from optimization.evaluate import evaluate_plan
from optimization.solve import frontier, optimize
from pipelines.workflows.builtin import builtin_data


@pytest.fixture(scope="module")
def lcity_forecast():
    return ClaimsModel().fit(load_data(builtin_data()).cells).forecast(2022)


@pytest.mark.slow
def test_status_quo_min_loss_and_break_even(lcity_forecast, space, status_quo):
    fc = lcity_forecast
    c = space.constraints
    # status quo: the loss the forecast implies, computed here from its parts
    before = evaluate_plan(status_quo, fc, space.costs)
    income = 60.0 * fc.insured
    implied = fc.expected_payout(status_quo) + 0.04 * income - income
    assert before.expected_loss == pytest.approx(implied, rel=1e-12)
    assert before.expected_loss > 0  # today's plan loses money in 2022
    # min-loss at today's premium: every benefit rule holds and the loss is lower
    best = optimize(fc, space, status_quo, "min-loss")
    k, plan = best.kpis, best.plan
    levels = np.array(c.no_worse_levels)
    assert plan.premium_per_capita == 60.0
    assert k.effective_ratio >= c.effective_ratio_floor
    assert plan.deductible <= 0.5 * space.costs.disposable_income
    assert (np.diff(plan.ratios) >= 0).all()
    assert (plan.payout(levels) >= status_quo.payout(levels) - 1e-6).all()
    assert k.expected_loss < before.expected_loss
    assert best.lp_loss == pytest.approx(k.expected_loss, rel=1e-3)
    # break-even with today's benefits: the premium at which the expected loss is zero
    even = optimize(fc, space, status_quo, "break-even")
    assert even.plan.ratios == status_quo.ratios and even.plan.cap == status_quo.cap
    assert even.plan.deductible == status_quo.deductible
    assert even.kpis.expected_loss == pytest.approx(0.0, abs=1e3)
    # closed form for a given plan: p = payout / (insured * (1 - opex share))
    p = fc.expected_payout(status_quo) / (fc.insured * (1 - space.costs.opex_share))
    assert even.plan.premium_per_capita == pytest.approx(p, rel=1e-6)


@pytest.mark.slow
def test_frontier_is_monotone(lcity_forecast, space, status_quo):
    table = frontier(lcity_forecast, space, status_quo, np.linspace(0.60, 0.66, 5))
    ok = table[table["feasible"]]
    assert len(ok) >= 3
    # a higher benefit floor never lowers the minimal loss
    assert (np.diff(ok["expected_loss"]) >= -1e-3).all()
    assert (ok["effective_ratio"] >= ok["floor"] - 1e-9).all()
