"""Completing an as-of view: intervals that hold the truth of simulated cities, completed
cells, groups, the forecast's prior and spread, as-of backtests, slow-settling portfolios,
and the as-of forecast of the default city within 5 %."""

from __future__ import annotations

import datetime
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.config import Development, ProjectConfig
from forecasting.data.cells import aggregate, annual_costs
from forecasting.data.dataset import load_data
from forecasting.data.lags import lag_records
from forecasting.data.options import DataOptions
from forecasting.errors import InputError
from forecasting.models.claims import ClaimsModel
from forecasting.models.completion import (
    as_known,
    complete,
    completed_cells,
    completion_sd,
    developed,
    model_priors,
)
from forecasting.models.development import trend_leverage
from forecasting.scheme.accounts import year_result
from forecasting.simulate import simulate_city
from pipelines.workflows.builtin import builtin_data
from tests.forecasting.models.test_development import AS_OF, _known


def _as_of_cells(city, as_of: datetime.date):
    """The cells and lags of a simulated city as known on `as_of` (years ended by then)."""
    members = city.members[city.members["year"] < as_of.year].reset_index(drop=True)
    claims = _known(city.claims[city.claims["year"] < as_of.year], as_of)
    cells = aggregate(members, annual_costs(members, claims.reset_index(drop=True)))
    return replace(cells, as_of=as_of, lags=lag_records(claims))


@pytest.mark.slow
def test_completed_latest_year_holds_the_truth_in_17_of_20_cities():
    """On cities with known lags the 90 % interval of the completed 2021 holds its
    complete cost in at least 17 of 20 (the binomial expectation is 18)."""
    hits, errors = 0, []
    for seed in range(300, 320):
        city = simulate_city(seed=seed, scale=0.05)
        done = complete(_as_of_cells(city, AS_OF))
        latest = max(done.years, key=lambda y: y.year)
        truth = city.claims.loc[city.claims["year"] == 2021, "eligible_cost"].sum()
        stated = latest.stated(0.9)
        hits += stated["low"] <= truth <= stated["high"]
        errors.append(latest.completed / truth - 1)
        assert latest.reported < truth  # the latest year was incomplete
    assert hits >= 17, (hits, errors)
    assert abs(np.mean(errors)) < 0.01  # and the chain ladder is unbiased across cities


def test_completed_cells_scale_each_year_to_its_ultimate(small_city):
    cells = _as_of_cells(small_city, AS_OF)
    done = complete(cells)
    filled = completed_cells(cells, done)
    for y in done.years:
        table = filled.table[filled.table["year"] == y.year]
        assert table["cost"].sum() == pytest.approx(y.completed, rel=1e-9)
        assert table["claimants"].sum() == pytest.approx(y.claimants_completed, rel=1e-9)
        mean = filled.claimants.loc[filled.claimants["year"] == y.year, "cost"].mean()
        assert mean == pytest.approx(y.completed / y.claimants_completed, rel=1e-9)
    assert done.years[-1].factor > 1.01 and done.years[0].factor == pytest.approx(1, abs=1e-3)


def test_completion_widens_the_forecast_by_its_leverage(small_city):
    """Three years 2019-2021 projected to 2022: the latest year's leverage is
    1/3 + 1 x 2 / 2 = 4/3, and the forecast's cost spread grows by it in quadrature."""
    assert trend_leverage([2019, 2020, 2021], 2022) == pytest.approx(4 / 3)
    cells = _as_of_cells(small_city, AS_OF)
    filled = completed_cells(cells, complete(cells))
    latest = filled.completion["years"][-1]
    assert completion_sd(filled, 2022) == pytest.approx(4 / 3 * latest["log_sd"])
    model = ClaimsModel().fit(filled)
    bare = replace(filled, completion=None)
    widened = model.forecast(2022).sev_year_sd
    plain = ClaimsModel().use(bare, model.freq_, model.sev_).forecast(2022).sev_year_sd
    assert widened == pytest.approx(np.hypot(plain, completion_sd(filled, 2022)))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["chain-ladder", "bornhuetter-ferguson"])
def test_as_of_forecast_of_default_city_within_5_percent(method):
    """Forecasting 2022 of the full default city from the data as of 2022-01-31: within
    5 % of its simulated payouts once 2021 is completed; the naive forecast on the
    incomplete data falls further short than that."""
    path = builtin_data(years=(2019, 2020, 2021, 2022))
    full = load_data(path)
    plan = full.scheme.plan(2022)
    actual = year_result(full.cells, 2022, plan, full.scheme.market(2022)).payouts
    ds = load_data(path, DataOptions(as_of=AS_OF))
    naive = ClaimsModel().fit(ds.cells).forecast(2022).expected_payout(plan)
    config = ProjectConfig(development=Development(method=method))
    done = developed(replace(ds, config=config))
    assert done.cells.completion["method"] == method
    got = ClaimsModel().fit(done.cells).forecast(2022).expected_payout(plan)
    assert got == pytest.approx(actual, rel=0.05)
    assert naive < 0.95 * actual


def test_as_of_backtests_see_each_origin_as_of_its_negotiation_date(small_dir):
    """For origin t the backtest trains on the data as of t's negotiation date (31 January
    by default, configurable), the years before t, completed when there are two."""
    ds = developed(load_data(small_dir, DataOptions(as_of=AS_OF)))
    claims = pd.read_parquet(next(small_dir.glob("claims*")))
    for date in ("01-31", "03-31"):
        config = ProjectConfig(development=Development(negotiation_date=date))
        known = as_known(replace(ds, config=config))(2021)
        assert known.years == [2019, 2020] and known.as_of == config.development.negotiation(
            2021)
        settled = pd.to_datetime(claims["settlement_date"]) <= pd.Timestamp(known.as_of)
        expected = claims[settled & (claims["year"] == 2020)]["eligible_cost"].sum()
        year_2020 = next(y for y in known.completion["years"] if y["year"] == 2020)
        assert year_2020["reported"] == pytest.approx(expected, rel=1e-9)
    one_year = as_known(ds)(2020)  # one service year: nothing to learn development from
    assert one_year.years == [2019] and one_year.completion is None


def _as_of_keyed(small_dir):
    return load_data(small_dir, DataOptions(as_of=AS_OF)).cells


@pytest.mark.parametrize("key", ["residence", "sex"])
def test_groups_develop_apart_and_add_up(small_dir, small_city, key):
    """With group_by, each group's triangles complete its own years; the totals are their
    sums (errors in quadrature), the reported parts are the claims each group settled by
    the date, and the completed cells hold each group's completed cost."""
    cells = _as_of_keyed(small_dir)
    done = complete(cells, Development(group_by=key, min_claimants=1))
    assert {g.group for g in done.groups} == set(cells.table[key].astype(str))
    members = small_city.members[["member_id", "year", key]]
    claims = _known(small_city.claims[small_city.claims["year"] <= 2021], AS_OF).merge(
        members, on=["member_id", "year"])
    settled = claims.groupby(["year", key])["eligible_cost"].sum()
    filled = completed_cells(cells, done)
    for g in done.groups:
        assert g.reported == pytest.approx(settled[(g.year, g.group)], rel=1e-9)
        mine = filled.table[(filled.table["year"] == g.year)
                            & (filled.table[key].astype(str) == g.group)]
        assert mine["cost"].sum() == pytest.approx(g.completed, rel=1e-9)
    for y in done.years:
        parts = [g for g in done.groups if g.year == y.year]
        assert y.completed == pytest.approx(sum(g.completed for g in parts))
        assert y.se == pytest.approx(np.sqrt(sum(g.se**2 for g in parts)))
    # a group's own factors differ from the portfolio's: it was developed apart
    whole = complete(cells).years[-1]
    assert any(abs(g.factor - whole.factor) > 1e-6 for g in done.groups if g.year == 2021)


def test_thin_groups_take_the_portfolio_factors(small_dir):
    cells = _as_of_keyed(small_dir)
    whole = complete(cells)
    thin = complete(cells, Development(group_by="residence", min_claimants=10**9))
    for y, w in zip(thin.years, whole.years, strict=True):
        assert y.completed == pytest.approx(w.completed, rel=1e-9)
        assert y.se == pytest.approx(w.se, rel=1e-9)  # one factor: the errors move together
        assert all(g.factor == pytest.approx(w.factor) for g in thin.groups if g.year == y.year)


def test_group_by_must_be_a_cohort_key(small_dir):
    with pytest.raises(InputError, match=r"group_by: 'district' is not a cohort key"):
        complete(_as_of_keyed(small_dir), Development(group_by="district"))


def test_the_prior_is_ciplans_own_forecast_of_the_latest_year(small_dir, small_city):
    """Bornhuetter-Ferguson's prior for 2021: the models fitted on the years before,
    at 2021's known exposure; close to 2021's complete cost and claimants, per group too."""
    cells = _as_of_keyed(small_dir)
    priors = model_priors(cells, Development(group_by="residence"))
    claims = small_city.claims[small_city.claims["year"] == 2021]
    cost, claimants = priors[""]
    assert cost == pytest.approx(claims["eligible_cost"].sum(), rel=0.1)
    assert claimants == pytest.approx(claims[["member_id"]].drop_duplicates().shape[0],
                                      rel=0.1)
    groups = {g: p for g, p in priors.items() if g}
    assert len(groups) >= 2
    assert sum(p[0] for p in groups.values()) == pytest.approx(cost, rel=1e-9)


def _slow_portfolio(folder, seed: int, n: int = 30_000):
    """A portfolio unlike L city: five years 2017-2021, about half of the latest year
    settled by 31 January (lags of months, larger bills slower), a 'district' key with a
    group of a few dozen people; the plan of L city every year."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    ids = np.arange(1, n + 1)
    district = rng.choice(["north", "south", "east", "tiny"], n,
                          p=[0.45, 0.35, 0.195, 0.005])
    sex, born = rng.choice(["F", "M"], n), rng.integers(1940, 2010, n)
    years = range(2017, 2023)
    pd.concat(pd.DataFrame({"member_id": ids, "year": y, "age": y - born, "sex": sex,
                            "district": district, "exposure": 1.0}) for y in years
              ).to_csv(folder / "members.csv", index=False)
    claims = []
    for y in years:
        has = rng.random(n) < 0.05 + 0.001 * ((y - born) - 40).clip(0) / 10
        who = np.repeat(ids[has], rng.poisson(0.6, has.sum()) + 1)
        cost = rng.lognormal(np.log(8000 * 1.05 ** (y - 2017)), 1.2, len(who))
        service = pd.Timestamp(f"{y}-01-01") + pd.to_timedelta(
            rng.integers(0, 365, len(who)), "D")
        lag = rng.exponential(120 * (cost / 8000) ** 0.3, len(who)) + rng.exponential(
            60, len(who))
        claims.append(pd.DataFrame({
            "member_id": who, "service_date": service.date, "eligible_cost": cost.round(2),
            "settlement_date": (service + pd.to_timedelta(lag.astype(int), "D")).date}))
    pd.concat(claims).to_csv(folder / "claims.csv", index=False)
    plan = ('premium_per_capita = 60.0\ndeductible = 15000.0\nband_edges = [50000.0, '
            '100000.0, 200000.0]\nratios = [0.60, 0.65, 0.70, 0.75]\ncap = 300000.0\n')
    (folder / "scheme.toml").write_text("".join(
        f"[plan.{y}]\n{plan}[plan.{y}.special]\ndeductible_factor = 0.5\n"
        f"ratio_increment = 0.05\ncap = \"none\"\n[market.{y}]\neligible_population = "
        f"40000\ndisposable_income = 31500.0\nopex_fixed = 0.0\nopex_share = 0.04\n"
        for y in years))
    return folder


@pytest.mark.parametrize("method", ["chain-ladder", "bornhuetter-ferguson"])
@pytest.mark.parametrize("group_by", ["", "district"])
def test_slow_settlement_completes_every_layer_upwards(tmp_path, method, group_by):
    """Months-long lags and a top layer (above the cap) with nothing settled yet in the
    latest year: the completed years' accounts are numbers (they were NaN, or the thin
    group stopped the layered map with a traceback), no layer is completed below what is
    already settled in it (a thin top layer's chain ladder used to shrink the others),
    and the completed cost still adds up."""
    from forecasting.config import ProjectConfig
    from forecasting.models.completion import development_edges

    path = _slow_portfolio(tmp_path / "data", seed=12)
    config = ProjectConfig.model_validate({
        "cohorts": {"keys": ["sex", "district"]},
        "development": {"method": method, "group_by": group_by, "min_claimants": 100}})
    ds = load_data(path, DataOptions(as_of=AS_OF, spec=config.cohorts.spec()), config)
    done = developed(ds)
    completion = done.cells.completion
    for y in completion["groups"] or completion["years"]:
        assert all(d >= k * (1 - 1e-9) for k, d in zip(y["layers_reported"], y["layers"],
                                                      strict=True)), y
        if y["layers"]:
            assert sum(y["layers"]) == pytest.approx(y["completed"], rel=1e-9)
    for year in (2020, 2021):
        paid = year_result(done.cells, year, ds.scheme.plan(year), ds.scheme.market(year))
        assert np.isfinite(paid.payouts) and paid.payouts > 0
    assert development_edges(ds.cells, ds.scheme)  # layers were developed


def test_completed_year_accounts_count_the_claimants_to_come(tmp_path):
    """A year a third of whose claimants are not yet reported on the as-of date: each
    claimant row of the completed cells stands for the year's claimant factor of them, so
    its accounts (history, the report, the backtests' payouts) come near the complete
    data's; counting each row once left 2021's payouts about 28 % short."""
    path = _slow_portfolio(tmp_path / "data", seed=1)
    full = load_data(path)
    done = developed(load_data(path, DataOptions(as_of=AS_OF)))
    latest = max(done.cells.completion["years"], key=lambda y: y["year"])
    assert latest["claimant_factor"] > 1.3
    plan, market = full.scheme.plan(2021), full.scheme.market(2021)
    truth = year_result(full.cells, 2021, plan, market)
    got = year_result(done.cells, 2021, plan, market)
    assert got.payouts == pytest.approx(truth.payouts, rel=0.05)
    assert got.claimants_paid == pytest.approx(truth.claimants_paid, rel=0.1)


def test_reported_above_a_threshold_claimants_carry_the_completed_cost(tmp_path):
    """Claims reported only over 20,000 a year, lags of months: the settled cost by the
    as-of date also holds member-years not yet over the threshold, which no claimant row
    holds; the rows are still scaled to the mean cost of a claimant once all is settled
    (completed cost / completed claimants), so the year's accounts do not read ~12 % short
    as they did scaled by the ratio of the factors."""
    path = _slow_portfolio(tmp_path / "data", seed=1)
    claims = pd.read_csv(path / "claims.csv")
    year = pd.to_datetime(claims["service_date"]).dt.year
    total = claims.groupby([claims["member_id"], year])["eligible_cost"].transform("sum")
    claims[total > 20_000].to_csv(path / "claims.csv", index=False)
    options = DataOptions(reported_above=20_000)
    full = load_data(path, options)
    done = developed(load_data(path, replace(options, as_of=AS_OF)))
    for y in done.cells.completion["years"]:
        rows = done.cells.claimants[done.cells.claimants["year"] == y["year"]]
        assert rows["cost"].mean() == pytest.approx(
            y["completed"] / y["claimants_completed"], rel=1e-9)
    plan, market = full.scheme.plan(2021), full.scheme.market(2021)
    truth = year_result(full.cells, 2021, plan, market).payouts
    assert year_result(done.cells, 2021, plan, market).payouts == pytest.approx(truth,
                                                                                 rel=0.05)


def test_a_december_negotiation_is_held_the_year_before(small_dir):
    """negotiation_in = "year before": origin 2021 sees the data as of 2020-12-15, the
    years before 2021 of which 2020 is still under way: only 2019, as reported."""
    ds = developed(load_data(small_dir, DataOptions(as_of=AS_OF)))
    config = ProjectConfig(development=Development(negotiation_date="12-15",
                                                   negotiation_in="year before"))
    assert config.development.negotiation(2021) == datetime.date(2020, 12, 15)
    known = as_known(replace(ds, config=config))(2021)
    assert known.as_of == datetime.date(2020, 12, 15) and known.years == [2019]
