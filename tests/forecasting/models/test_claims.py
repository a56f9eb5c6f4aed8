"""ClaimsModel end to end: no threshold, layer or floor is a money constant, so costs a
hundred times smaller give the same relative figures."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.data.cohorts import CohortSpec
from forecasting.models.backtesting import backtest
from forecasting.models.claims import ClaimsModel
from forecasting.scheme.in_force import Scheme
from forecasting.scheme.plan import Plan

FACTOR = 0.01


def _scaled_plan(plan: Plan, factor: float) -> Plan:
    return plan.with_(premium_per_capita=plan.premium_per_capita * factor,
                      deductible=plan.deductible * factor,
                      band_edges=tuple(e * factor for e in plan.band_edges),
                      cap=None if plan.cap is None else plan.cap * factor)


def _cells(city, factor: float = 1.0):
    claims = city.claims.assign(eligible_cost=city.claims["eligible_cost"] * factor)
    annual, counts = annual_costs(city.members, claims, counts=True)
    return aggregate(city.members, annual, counts=counts)


@pytest.fixture(scope="module")
def both(small_city):
    """The small L city as it is and with every cost, plan and market amount / 100."""
    scheme = small_city.scheme
    small_scheme = Scheme({y: _scaled_plan(p, FACTOR) for y, p in scheme.plans.items()},
                          {y: replace(m, disposable_income=m.disposable_income * FACTOR)
                           for y, m in scheme.markets.items()})
    return (_cells(small_city), scheme), (_cells(small_city, FACTOR), small_scheme)


def test_costs_100_times_smaller_give_the_same_relative_figures(both):
    (cells, scheme), (small, small_scheme) = both
    plan, small_plan = scheme.plan(2022), small_scheme.plan(2022)
    fc = ClaimsModel().fit(cells.until(2021)).forecast(2022)
    fs = ClaimsModel().fit(small.until(2021)).forecast(2022)
    np.testing.assert_allclose(fs.cohorts["claimants"], fc.cohorts["claimants"], rtol=1e-9)
    np.testing.assert_allclose(fs.cohorts["mean_severity"], FACTOR * fc.cohorts[
        "mean_severity"], rtol=1e-4)
    assert fs.expected_payout(small_plan) == pytest.approx(
        FACTOR * fc.expected_payout(plan), rel=1e-4)
    # layers at the plan's kinks and at the data's quantiles, in the data's own units
    assert fs.layer_levels(small_plan) == pytest.approx(
        [FACTOR * x for x in fc.layer_levels(plan)], rel=1e-9)
    np.testing.assert_allclose(fs.layer_levels(None), [FACTOR * x for x in fc.layer_levels(
        None)], rtol=0.06)  # each rounded to two digits
    table, small_table = fc.layer_table(plan), fs.layer_table(small_plan)
    assert list(table.columns) != list(small_table.columns)  # labelled in each unit
    np.testing.assert_allclose(small_table.to_numpy(), FACTOR * table.to_numpy(), rtol=1e-4)
    # the ranges come from scenarios deep enough for each plan: the same, a hundredth
    by, total = fc.payout_ranges(plan, 300, seed=3)
    small_by, small_total = fs.payout_ranges(small_plan, 300, seed=3)
    for key in ("expected", "low", "high"):
        assert small_total[key] == pytest.approx(FACTOR * total[key], rel=1e-4)
        np.testing.assert_allclose(small_by[key], FACTOR * by[key], rtol=1e-4, atol=1e-9)


def test_backtest_errors_are_unit_free(both):
    (cells, scheme), (small, small_scheme) = both
    cols = ["claimants_error", "severity_error", "layer_error", "payout_error",
            "loss_error_share", "poisson_deviance", "gamma_deviance"]
    ref = backtest(cells, scheme, ClaimsModel, origins=[2021])[cols]
    got = backtest(small, small_scheme, ClaimsModel, origins=[2021])[cols]
    pd.testing.assert_frame_equal(got, ref, rtol=1e-4, atol=1e-8)


def test_without_claim_counts_only_the_claims_column_is_missing(both):
    """claim_counts=False (training's fits) leaves out the claim-count twin and nothing
    else: the same claimants, severities and backtest scores."""
    (cells, scheme), _ = both
    assert "claims" in cells.table and cells.table["claims"].sum() > 0
    full = ClaimsModel().fit(cells.until(2021))
    lean = ClaimsModel(claim_counts=False).fit(cells.until(2021))
    assert full.counts_ is not None and lean.counts_ is None
    fc, fl = full.forecast(2022), lean.forecast(2022)
    assert "claims" in fc.cohorts and "claims" not in fl.cohorts
    pd.testing.assert_frame_equal(fl.cohorts, fc.cohorts.drop(columns="claims"))
    ref = backtest(cells, scheme, ClaimsModel, origins=[2021])
    got = backtest(cells, scheme, lambda: ClaimsModel(claim_counts=False), origins=[2021])
    pd.testing.assert_frame_equal(got, ref)


def test_rows_by_key_are_pandas_groups_in_row_order():
    """Each key's rows in order, as pandas' group-by gives them (the blend's past costs)."""
    from forecasting.models.claims import _rows_by_key

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"age_band": rng.choice([0, 5, 85], 500),
                          "sex": pd.Categorical(rng.choice(["F", "M"], 500)),
                          "special_group": rng.random(500) < 0.1})
    keys = ["age_band", "sex", "special_group"]
    got = _rows_by_key(frame, keys)
    want = {key: rows.to_numpy() for key, rows in pd.Series(np.arange(500)).groupby(
        [frame[k].to_numpy() for k in keys])}
    assert set(got) == set(want)
    for key, rows in want.items():
        np.testing.assert_array_equal(got[key], rows)
    assert _rows_by_key(frame.iloc[:0], keys) == {}


def _heavy_tailed_cells(year_levels, seed=3):
    """Three years of 3,000 members in two districts, a tenth of them claimants whose costs
    are a lognormal body with 3 % of them 100 times the median (a tail with index near 1),
    each year's costs times its level."""
    rng = np.random.default_rng(seed)
    rows = []
    for year, level in year_levels.items():
        n = 3000
        members = pd.DataFrame({"member_id": np.arange(n), "year": year,
                                "age": rng.integers(20, 70, n),
                                "district": rng.choice(["east", "west"], n),
                                "special_group": False, "exposure": 1.0})
        cost = np.where(rng.random(n) < 0.1, np.exp(rng.normal(np.log(20_000), 0.9, n)), 0.0)
        cost *= np.where(rng.random(n) < 0.03, 100.0, 1.0) * level
        rows.append((members, cost))
    members = pd.concat([m for m, _ in rows], ignore_index=True)
    annual = np.concatenate([c for _, c in rows])
    return aggregate(members, annual, CohortSpec(10, 60, ("district",)))


def test_a_heavy_tail_is_not_taken_for_a_year_effect():
    """Three years drawn alike: the year totals swing with the few huge costs, which is
    process variance the scenarios draw cost by cost. Counted as a systemic year effect it
    became a log sd near 3 (widened), whose mean-one multiplier left most scenarios near
    no payout: a 5th percentile of 0 and scenarios averaging a third of the exact price."""
    cells = _heavy_tailed_cells({2020: 1.0, 2021: 1.0, 2022: 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ClaimsModel().fit(cells)
    assert model.sev_year_sd_ < 0.15
    forecast = model.forecast(2023)
    assert forecast.sev_year_sd < 0.3


def test_a_real_cost_level_shift_is_still_a_year_effect():
    """Every cost of 2021 a third higher and of 2022 a quarter lower: the years' levels
    sit about 0.28 apart in logs, and the systemic spread sees it."""
    cells = _heavy_tailed_cells({2020: 1.0, 2021: 4 / 3, 2022: 0.75})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ClaimsModel().fit(cells)
    assert 0.15 < model.sev_year_sd_ < 1.0


class _KnownScale:
    """A severity model whose log scale is the truth of a simulation (a trend of
    `trend` a year from 2020): what the year effect is measured against."""

    def __init__(self, trend: float):
        self.trend = trend

    def log_scale(self, frame: pd.DataFrame) -> np.ndarray:
        return self.trend * (frame["year"].to_numpy() - 2020.0)


def _year_variance_mean(counts: dict[int, int], tau: float, trend: float, model_trend: float,
                        reps: int = 400, seed: int = 5, clipped: bool = True) -> float:
    """The mean over `reps` portfolios of the estimated year-effect variance: claimants of
    each year with lognormal costs (log sd 1) times a year effect exp(N(0, tau^2)) on a
    cost trend, measured against a model of trend `model_trend`; the model's squared log
    sd (`clipped`, at least 0) or the unbiased estimate itself."""
    from types import SimpleNamespace

    from forecasting.models.claims import _severity_year_sd
    from forecasting.models.uncertainty import year_level_variance

    rng = np.random.default_rng(seed)
    years = np.repeat(list(counts), list(counts.values()))
    got = []
    for _ in range(reps):
        effect = dict(zip(counts, rng.normal(0.0, tau, len(counts)), strict=True))
        log_cost = (9.0 + trend * (years - 2020) + np.vectorize(effect.get)(years)
                    + rng.normal(0.0, 1.0, len(years)))
        if not clipped:
            resid = log_cost - _KnownScale(model_trend).log_scale(pd.DataFrame({"year": years}))
            got.append(year_level_variance(years, resid))
            continue
        cells = SimpleNamespace(claimants=pd.DataFrame({"year": years,
                                                        "cost": np.exp(log_cost)}))
        got.append(_severity_year_sd(cells, _KnownScale(model_trend)) ** 2)
    return float(np.mean(got))


def test_severity_year_variance_is_unbiased_on_a_known_year_effect():
    """Three years of 400 claimants, year effects of log sd 0.3 (variance 0.09), the model
    at the true trend: the levels' spread about their mean has two degrees of freedom,
    not one (the estimate was 0.18, a sd 1.4 times too wide)."""
    got = _year_variance_mean({2020: 400, 2021: 400, 2022: 400}, 0.3, 0.05, 0.05)
    assert got == pytest.approx(0.09, abs=0.02)


def test_severity_year_variance_leaves_a_trend_out():
    """A cost trend of 10 % a year the model missed: no year effect (prediction_factor
    widens for the trend's own error), as the old spread about the mean took it (0.28)."""
    got = _year_variance_mean({2019: 300, 2020: 200, 2021: 500, 2022: 400, 2023: 300},
                              0.3, 0.10, 0.0)
    assert got == pytest.approx(0.09, abs=0.02)


def test_year_level_variance_counts_a_lone_claimant_at_its_sampling_variance():
    """A year of one claimant among years of hundreds: its level varies by the whole
    residual variance (1 here), which the estimate takes out (unbiased before clipping;
    the spread of single estimates is wide, hence 2,000 portfolios)."""
    got = _year_variance_mean({2019: 300, 2020: 1, 2021: 500, 2022: 400, 2023: 300},
                              0.3, 0.10, 0.0, reps=2000, clipped=False)
    assert got == pytest.approx(0.09, abs=0.04)  # uncorrected: about 0.3
