"""Every 5-95 % range of the loss holds its own expected value and still holds 90 % of the
scenarios, on a portfolio unlike L city: one small cohort with rare, heavy claims, where
most scenarios pay nothing (the loss sits at opex - premium, or after settlement at the
kept surplus) and the expected loss lies above the 95th percentile of the scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.data.cohorts import CohortSpec
from forecasting.forecast import Forecast
from forecasting.models.severity import BlendedSeverity
from forecasting.models.spliced import SplicedSeverity
from optimization.contract import settle
from optimization.evaluate import evaluate_plan, scenario_money
from optimization.projection import project
from optimization.solve import scenario_set


@pytest.fixture(scope="module")
def rare():
    """2,000 insured, 0.8 expected claimants a year, costs lognormal with a Pareto tail."""
    sev = BlendedSeverity(SplicedSeverity(mu=float(np.log(20_000)), sigma=1.0,
                                          threshold=80_000.0, tail_prob=0.1, alpha=1.5),
                          np.array([]), 0.0)
    cohorts = pd.DataFrame([{"age_band": 8, "special_group": False, "insured": 2_000.0,
                             "exposure": 2_000.0, "frequency": 0.0004, "claimants": 0.8,
                             "mean_severity": sev.mean()}])
    return Forecast(2022, CohortSpec(keys=("special_group",)), cohorts, (sev,), None, None,
                    0.05, 0.08)


def _holds(lo: float, hi: float, expected: float, losses: np.ndarray) -> None:
    assert lo <= expected <= hi, (lo, expected, hi)
    assert np.mean((losses >= lo) & (losses <= hi)) >= 0.9 - 1e-9


def test_the_plan_s_loss_ranges_hold_their_expected_values(rare, space, status_quo):
    sc = scenario_set(rare, space, status_quo, seed=1)
    terms = space.contract.terms()
    k = evaluate_plan(status_quo, rare, space.costs, sc, terms=terms)
    pay, income, opex = scenario_money(status_quo, rare, space.costs, sc)
    _holds(k.loss_p05, k.loss_p95, k.expected_loss, pay + opex - income)
    after = -settle(pay, income, opex, terms).after  # the loss after settlement, by scenario
    s = k.settlement
    assert s["expected_loss_after"] == pytest.approx(after.mean())
    _holds(s["loss_p05_after"], s["loss_p95_after"], s["expected_loss_after"], after)
    _holds(s["loss_p05_before"], s["loss_p95_before"], s["expected_loss_before"],
           pay + opex - income)


def test_the_term_s_loss_ranges_hold_their_expected_values(rare, space, status_quo):
    out = project(rare, status_quo, space, space.contract.terms(), 31_500.0, n=400)
    table = out.scenarios
    for _, row in out.years.iterrows():
        mine = table if row["year"] == "term" else table[table["year"] == int(row["year"])]
        by = mine.groupby("scenario")[["loss_before", "insurer_result_after"]].sum()
        _holds(row["loss_p05_before"], row["loss_p95_before"], row["expected_loss_before"],
               by["loss_before"].to_numpy())
        _holds(row["loss_p05_after"], row["loss_p95_after"], row["expected_loss_after"],
               -by["insurer_result_after"].to_numpy())


def test_the_figures_before_settlement_are_the_plan_s_own(rare, space, status_quo):
    """Before settlement the contract changes nothing: plan.json's settlement block says
    the plan's exact expected loss and range (the KPIs'), the term's first year says the
    same; its scenario mean (here off by its noise) contradicted both in the report."""
    sc = scenario_set(rare, space, status_quo, seed=1)
    k = evaluate_plan(status_quo, rare, space.costs, sc, terms=space.contract.terms())
    pay, income, opex = scenario_money(status_quo, rare, space.costs, sc)
    assert abs((pay + opex - income).mean() - k.expected_loss) > 1.0  # the noise is there
    s = k.settlement
    assert s["expected_loss_before"] == pytest.approx(k.expected_loss)
    assert (s["loss_p05_before"], s["loss_p95_before"]) == (k.loss_p05, k.loss_p95)
    first = project(rare, status_quo, space, space.contract.terms(), 31_500.0, n=400).years
    assert s["expected_loss_before"] == pytest.approx(
        float(first.loc[0, "expected_loss_before"]), rel=1e-9)
