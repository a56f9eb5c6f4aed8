"""The Forecast: exact pricing vs independent methods, scenarios, accuracy, calibration."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from forecasting.data.cells import Cells, aggregate, annual_costs
from forecasting.data.dataset import load_data
from forecasting.errors import InputError
from forecasting.forecast import Forecast, payout_per_claimant
from forecasting.models.claims import ClaimsModel
from forecasting.models.severity import BlendedSeverity
from forecasting.models.spliced import SplicedSeverity
from forecasting.scheme.accounts import year_result
from forecasting.simulate import lcity_plan, simulate_city
from pipelines.workflows.builtin import builtin_data
from tests.payload import payload_bytes

PLAN = lcity_plan(60.0)
PARAM = SplicedSeverity(np.log(4_500), 1.1, 60_000, 0.012, 2.5, scale=1.2)


@pytest.fixture(scope="module")
def small_cells(small_city) -> Cells:
    return aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))


@pytest.fixture(scope="module")
def small_forecast(small_cells) -> Forecast:
    return ClaimsModel().fit(small_cells.until(2021)).forecast(2022)


@pytest.mark.parametrize("plan", [PLAN, PLAN.for_special_group(), PLAN.with_(cap=40_000.0)])
def test_parametric_payout_equals_integral(plan):
    """E[g(X)] = integral of g'(x) (1 - F(x)) dx, by quadrature over each band."""
    x_cap = plan.capped_cost()
    total = 0.0
    for lo, hi, r in zip(plan.lower_edges, plan.upper_edges, plan.ratios, strict=True):
        lo, hi = min(lo, x_cap), min(hi, x_cap)
        # split at the splice point and by decades; beyond 1e9 CNY the tail adds < 0.001
        hi = min(hi, 1e9)
        cuts = [lo, *(c for c in (72_000.0, 1e6, 1e7, 1e8) if lo < c < hi), hi]
        for a, b in itertools.pairwise(cuts):
            total += r * quad(lambda x: 1 - PARAM.cdf(x), a, b, limit=200)[0]
    blend = BlendedSeverity(PARAM, np.array([]), 0.0)
    assert payout_per_claimant(plan, blend) == pytest.approx(total, rel=1e-6)


def test_empirical_payout_is_the_average_payout():
    costs = PARAM.sample(np.random.default_rng(2), 500)
    blend = BlendedSeverity(PARAM, costs, 1.0)
    assert payout_per_claimant(PLAN, blend) == pytest.approx(PLAN.payout(costs).mean())


def test_scenario_mean_matches_expected_payout(small_forecast):
    """Process variance only: the scenarios' mean converges to the exact price."""
    quiet = replace(small_forecast, freq_year_sd=0.0, sev_year_sd=0.0, freq_covariance=None)
    pay = quiet.scenarios(4_000, seed=3).payouts(PLAN)
    se = pay.std() / np.sqrt(pay.size)
    assert abs(pay.mean() - quiet.expected_payout(PLAN)) < 4 * se


def test_parameter_uncertainty_widens_the_range(small_forecast):
    quiet = replace(small_forecast, freq_year_sd=0.0, sev_year_sd=0.0, freq_covariance=None)
    wide = small_forecast.scenarios(2_000, seed=4).payouts(PLAN)
    narrow = quiet.scenarios(2_000, seed=4).payouts(PLAN)
    assert wide.std() > narrow.std()


def test_scenarios_refuse_a_deductible_below_their_floor(small_forecast):
    sc = small_forecast.scenarios(10, seed=0, floor=20_000)
    with pytest.raises(ValueError, match="above 20000"):
        sc.payouts(PLAN)


def test_save_load_roundtrip(small_forecast, tmp_path):
    """Data only (JSON and Parquet) and exact: every figure and every scenario the same."""
    loaded = Forecast.load(small_forecast.save(tmp_path / "fc"))
    assert list(tmp_path.iterdir()) == [tmp_path / "fc"]
    assert {p.suffix for p in (tmp_path / "fc").iterdir()} == {".json", ".parquet"}
    pd.testing.assert_frame_equal(loaded.cohorts, small_forecast.cohorts)
    assert loaded.expected_payout(PLAN) == small_forecast.expected_payout(PLAN)
    for a, b in zip(loaded.severities, small_forecast.severities, strict=True):
        assert a.parametric == b.parametric and a.credibility == b.credibility
        np.testing.assert_array_equal(a.costs, b.costs)
    np.testing.assert_array_equal(loaded.freq_covariance, small_forecast.freq_covariance)
    np.testing.assert_array_equal(loaded.scenarios(30, 4).payouts(PLAN),
                                  small_forecast.scenarios(30, 4).payouts(PLAN))
    assert loaded.provenance["forecast_hash"]  # the content a plan made from it records


def test_to_dict_is_plain_json_and_from_dict_inverts_it(small_forecast):
    data = json.loads(json.dumps(small_forecast.to_dict()))
    again = Forecast.from_dict(data)
    assert again.to_dict() == small_forecast.to_dict()


@pytest.mark.parametrize(("part", "value", "message"), [
    ("sigma", -1.0, "sigma = -1.0"), ("tail_prob", 1.5, "tail_prob = 1.5"),
    ("alpha", float("nan"), "alpha = nan"), ("credibility", 2.0, "credibility = 2.0"),
    ("costs", [1.0, -5.0], "costs must be")])
def test_from_dict_refuses_parameters_out_of_range(small_forecast, part, value, message):
    data = small_forecast.to_dict()
    sev = data["severities"][0]
    (sev if part in sev else sev["parametric"])[part] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        Forecast.from_dict(data)


def test_an_old_pickle_folder_is_refused_unopened(tmp_path):
    """forecast.joblib of the old format: refused by its name, its code never runs."""
    marker = tmp_path / "payload-ran"
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "forecast.joblib").write_bytes(payload_bytes(marker))
    with pytest.raises(InputError, match=r"old pickle format .* ciplan no longer opens"):
        Forecast.load(folder)
    assert not marker.exists()


def test_by_cohort_adds_up(small_forecast):
    by = small_forecast.payout_by_cohort(PLAN)
    assert by.sum() == pytest.approx(small_forecast.expected_payout(PLAN))
    layers = small_forecast.layer_table()
    np.testing.assert_allclose(layers.sum(axis=1), small_forecast.cohorts["mean_severity"],
                               rtol=1e-9)


@pytest.mark.slow
def test_forecast_2022_of_default_lcity_within_5_percent():
    """Train on 2019-2021 of the full default city, forecast 2022, compare with its draw."""
    ds = load_data(builtin_data(years=(2019, 2020, 2021, 2022)))
    plan = ds.scheme.plan(2022)
    fc = ClaimsModel().fit(ds.cells.until(2021)).forecast(2022)
    actual = year_result(ds.cells, 2022, plan, ds.scheme.market(2022))
    claimants = ds.cells.year(2022).table["claimants"].sum()
    assert fc.cohorts["claimants"].sum() == pytest.approx(claimants, rel=0.05)
    assert fc.expected_payout(plan) == pytest.approx(actual.payouts, rel=0.05)


@pytest.mark.slow
def test_90_percent_interval_covers_16_to_20_of_20_cities():
    hits = 0
    for seed in range(100, 120):
        city = simulate_city(seed=seed, scale=0.05, years=(2019, 2020, 2021, 2022))
        cells = aggregate(city.members, annual_costs(city.members, city.claims))
        fc = ClaimsModel().fit(cells.until(2021)).forecast(2022)
        plan = city.scheme.plan(2022)
        low, high = np.percentile(fc.scenarios(1000, seed=seed).payouts(plan), [5, 95])
        realised = year_result(cells, 2022, plan, city.scheme.market(2022)).payouts
        hits += low <= realised <= high
    assert 16 <= hits <= 20
