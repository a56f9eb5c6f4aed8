"""The three-year term: identical years without trend or ageing; a known trend grows the
costs by it; expected results after settlement equal the saved scenario table."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from optimization.projection import project, scaled
from optimization.space import ContractTerms


def _term(space, **kw):
    return space.model_copy(update={"term": space.term.model_copy(update=kw)})


def test_no_trend_no_ageing_gives_identical_years(small_forecast, space, status_quo):
    sp = _term(space, cost_trend=0.0, cost_trend_sd=0.0, enrolment_trend=0.0, ageing=False,
               deductible_rule="fixed", premium_index=0.0)
    out = project(small_forecast, status_quo, sp, space.contract.terms(), 31_500.0, n=200)
    years = out.years[out.years["year"] != "term"]
    assert len(years) == 3
    for col in ("expected_payout", "expected_loss_before", "insured", "premium_per_capita"):
        np.testing.assert_allclose(years[col].to_numpy(float), years[col].iloc[0], rtol=1e-12)
    assert years["expected_payout"].iloc[0] == pytest.approx(
        small_forecast.expected_payout(status_quo), rel=1e-12)


def test_a_known_trend_grows_the_costs_by_it(small_forecast, space, status_quo):
    """With the trend at log 5 % a year, a plan with no deductible, ratio 1 and no cap
    pays the whole cost: it grows by exactly exp(0.05) a year."""
    sp = _term(space, cost_trend=0.05, cost_trend_sd=0.0, enrolment_trend=0.0, ageing=False,
               deductible_rule="fixed")
    everything = status_quo.with_(deductible=0.0, ratios=(1.0,) * 4, cap=None)
    out = project(small_forecast, everything, sp, space.contract.terms(), 31_500.0, n=100)
    pay = out.years.loc[out.years["year"] != "term", "expected_payout"].to_numpy(float)
    np.testing.assert_allclose(pay[1:] / pay[:-1], np.exp(0.05), rtol=1e-9)
    # and the scaled-plan identity on a capped plan, against the scenario costs
    plan = status_quo
    a = 1.3
    direct = small_forecast.scenarios(400, 1, floor=1.0)
    from forecasting.scheme.plan import member_payouts
    lhs = member_payouts(plan, a * direct.cost, direct.special[direct.cohort]).sum()
    rhs = a * member_payouts(scaled(plan, a), direct.cost, direct.special[direct.cohort]).sum()
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_term_results_are_the_scenario_table(small_forecast, space, status_quo):
    terms = ContractTerms(surplus_keep=0.05, loss_layers=((0.05, 0.10, 0.5), (0.10, None, 1.0)))
    out = project(small_forecast, status_quo, space, terms, 31_500.0, n=300, seed=4)
    t = out.scenarios
    for year, row in out.years.set_index("year").iterrows():
        sel = t if year == "term" else t[t["year"] == int(year)]
        if year == "term":
            after = sel.groupby("scenario")["insurer_result_after"].sum()
            assert row["expected_loss_after"] == pytest.approx(-after.mean(), rel=1e-9)
        else:
            assert row["expected_loss_after"] == pytest.approx(
                -sel["insurer_result_after"].mean(), rel=1e-9)
            assert row["fund_topup"] == pytest.approx(sel["fund_share"].mean(), rel=1e-9)
    # the trend's uncertainty accumulates: the range of later years is wider
    sp = _term(space, cost_trend=0.0, cost_trend_sd=0.1, enrolment_trend=0.0, ageing=False,
               deductible_rule="fixed")
    wide = project(small_forecast, status_quo, sp, terms, 31_500.0, n=300, seed=4).years
    width = (wide["loss_p95_before"] - wide["loss_p05_before"]).to_numpy()[:3]
    assert width[0] < width[1] < width[2]


def test_term_break_even_premium_is_exact(small_forecast, space, status_quo):
    """The closed form against the projection itself: at the premium it gives the term's
    expected loss is <= 0, one step lower it is > 0 (premium indexed 3 % a year)."""
    from optimization.projection import term_break_even

    sp = _term(space, premium_index=0.03)
    terms = space.contract.terms()
    first = project(small_forecast, status_quo, sp, terms, 31_500.0, n=50).years
    p = term_break_even(first, sp)

    def term_loss(premium: float) -> float:
        years = project(small_forecast, status_quo.with_(premium_per_capita=premium), sp,
                        terms, 31_500.0, n=50).years
        return float(years.loc[years["year"] == "term", "expected_loss_before"].iloc[0])

    assert term_loss(p) <= 0 < term_loss(p - sp.premium.step)
    assert p / sp.premium.step == pytest.approx(round(p / sp.premium.step))


@pytest.mark.slow
def test_three_year_range_covers_the_realised_term_in_16_to_20_of_20_cities(space):
    """Held-out years drawn by the simulator (2022-2024), the term projected from a
    forecast fitted on 2019-2021: the 90 % range of the cumulative loss holds the realised
    one in 16-20 of 20 cities."""
    from forecasting.data.cells import aggregate, annual_costs
    from forecasting.models.claims import ClaimsModel
    from forecasting.scheme.accounts import history, year_result
    from forecasting.simulate import simulate_city

    sp = _term(space, deductible_rule="fixed", premium_index=0.0)
    hits = 0
    for seed in range(200, 220):
        city = simulate_city(seed=seed, scale=0.03, years=tuple(range(2019, 2025)))
        cells = aggregate(city.members, annual_costs(city.members, city.claims))
        past = history(cells.until(2021), city.scheme).to_dict(orient="records")
        fc = ClaimsModel().fit(cells.until(2021)).forecast(2022, {"history": past})
        term = project(fc, city.scheme.plan(2022), sp, sp.contract.terms(), 31_500.0,
                       n=400, seed=seed).years.iloc[-1]
        realised = sum(year_result(cells, y, city.scheme.plan(y), city.scheme.market(y)).loss
                       for y in (2022, 2023, 2024))
        hits += term["loss_p05_before"] <= realised <= term["loss_p95_before"]
    assert 16 <= hits <= 20
def test_a_projection_asked_again_is_the_same_and_its_own_copy(small_forecast, space,
                                                              status_quo):
    """The projection is kept on the forecast and handed out as a copy: asked again it is
    the same; what a caller changes in its copy does not reach the next caller; another
    seed is drawn anew."""
    terms = space.contract.terms()
    first = project(small_forecast, status_quo, space, terms, 31_500.0, n=100, seed=3)
    first.scenarios["payout"] = -1.0
    again = project(small_forecast, status_quo, space, terms, 31_500.0, n=100, seed=3)
    fresh = project(replace(small_forecast), status_quo, space, terms, 31_500.0, n=100, seed=3)
    pd.testing.assert_frame_equal(again.scenarios, fresh.scenarios)
    pd.testing.assert_frame_equal(again.years, fresh.years)
    other = project(small_forecast, status_quo, space, terms, 31_500.0, n=100, seed=4)
    assert not np.array_equal(other.scenarios["payout"], again.scenarios["payout"])


def test_the_trend_walk_keeps_the_mean_and_the_deductible_follows_income(small_forecast,
                                                                         space, status_quo):
    """With a trend error but no trend, the expected payout of each year (quadrature over
    the cost level) is the scenarios' mean payout within their error (the walk is centred
    and the same uncertainty is in both); the deductible of year t is the income rule on
    year t-1's income, the given income being the year before the term."""
    from optimization.projection import year_plans

    sp = _term(space, cost_trend=0.0, cost_trend_sd=0.15, enrolment_trend=0.0,
               ageing=False, deductible_rule="fixed")
    out = project(small_forecast, status_quo, sp, space.contract.terms(), 31_500.0,
                  n=3000, seed=9)
    years = out.years[out.years["year"] != "term"]
    sim = out.scenarios.groupby("year")["payout"].agg(["mean", "std", "count"])
    for (_, row), (_, s) in zip(years.iterrows(), sim.iterrows(), strict=True):
        assert abs(s["mean"] - row["expected_payout"]) < 4 * s["std"] / np.sqrt(s["count"])
    rule = _term(space, deductible_rule="income", income_growth=0.03)
    plans = year_plans(status_quo, rule, 31_500.0)
    share = space.constraints.deductible_income_share
    assert plans[0].deductible == status_quo.deductible
    assert plans[1].deductible == pytest.approx(share * 31_500.0 * 1.03)
    assert plans[2].deductible == pytest.approx(share * 31_500.0 * 1.03**2)


def test_a_cost_level_per_scenario_multiplies_the_draws(small_forecast):
    """`level` multiplies each scenario's costs: with every cost drawn (floor 0) the draws
    are those without it, times the scenario's level; with a floor, each scenario keeps
    exactly the costs that reach it at its own level."""
    level = np.linspace(0.8, 1.5, 50)
    plain = small_forecast.scenarios(50, 7)
    moved = small_forecast.scenarios(50, 7, level=level)
    np.testing.assert_array_equal(moved.scenario, plain.scenario)
    np.testing.assert_allclose(moved.cost, plain.cost * level[plain.scenario], rtol=1e-12)
    high = small_forecast.scenarios(50, 7, floor=20_000.0, level=level)
    assert high.cost.min() > 20_000.0
    # each scenario's count above the floor is a Poisson draw of the expected count at its
    # level: the deeper the level, the more costs reach the floor
    counts = np.bincount(high.scenario, minlength=50)
    assert counts[-10:].mean() > counts[:10].mean()


def test_a_floor_per_cohort_draws_each_cohort_above_its_own(small_forecast):
    """One floor per cohort: the same draws as one floor when they are all equal; else each
    cohort holds only costs above its own, and the set's floor is the highest (above which
    it holds every cost)."""
    k = len(small_forecast.cohorts)
    one = small_forecast.scenarios(40, 2, floor=6_000.0)
    same = small_forecast.scenarios(40, 2, floor=np.full(k, 6_000.0))
    np.testing.assert_array_equal(one.cost, same.cost)
    floors = np.where(small_forecast._special(), 7_500.0, 15_000.0)
    by_cohort = small_forecast.scenarios(40, 2, floor=floors)
    assert (by_cohort.cost > floors[by_cohort.cohort]).all()
    assert by_cohort.floor == floors.max()


def test_the_first_year_is_settled_on_the_given_scenarios(small_forecast, space, status_quo):
    """Given the forecast year's scenarios (the optimiser's), the term's first year pays in
    each scenario what those scenarios pay (priced from their sorted sums), with their
    insured counts; the later years are drawn as without them."""
    from optimization.evaluate import scenario_payouts

    terms = space.contract.terms()
    given = small_forecast.scenarios(200, 11, floor=5_000.0)
    out = project(small_forecast, status_quo, space, terms, 31_500.0, n=200, seed=3,
                  scenarios=given)
    first = out.scenarios[out.scenarios["year"] == small_forecast.year]
    np.testing.assert_allclose(first["payout"].to_numpy(), given.payouts(status_quo),
                               rtol=1e-9)
    np.testing.assert_allclose(first["payout"].to_numpy(),
                               scenario_payouts(status_quo, given), rtol=1e-12)
    drawn = project(small_forecast, status_quo, space, terms, 31_500.0, n=200, seed=3)
    later = out.scenarios["year"] > small_forecast.year
    pd.testing.assert_frame_equal(out.scenarios[later].reset_index(drop=True),
                                  drawn.scenarios[later].reset_index(drop=True))
    # scenarios too shallow for the plan (floor above its deductibles) are not used
    shallow = small_forecast.scenarios(200, 11, floor=50_000.0)
    again = project(small_forecast, status_quo, space, terms, 31_500.0, n=200, seed=3,
                    scenarios=shallow)
    pd.testing.assert_frame_equal(again.scenarios, drawn.scenarios)
