"""Claims development: triangles built from the settlements as known, chain ladder and
Bornhuetter-Ferguson checked against Mack's published figures and closed forms, a tail,
the ODP floor of the error, lognormal intervals that hold their mean."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting.data.lags import lag_records
from forecasting.models.development import (
    complete_column,
    lognormal_interval,
    odp_scale,
    trend_prior,
    triangles,
)

AS_OF = datetime.date(2022, 1, 31)

# Mack (1993), "Distribution-free calculation of the standard error of chain ladder
# reserve estimates", ASTIN Bulletin 23(2), the RAA triangle: age-to-age factors, the
# reserves of the two latest accident years and their standard errors.
MACK_FACTORS = [2.999, 1.624, 1.271, 1.172, 1.113, 1.042, 1.033, 1.017, 1.009]
MACK_RESERVE = {1989: (10_650, 6_332), 1990: (16_339, 24_566)}


@pytest.fixture(scope="module")
def raa():
    import chainladder as cl

    with warnings.catch_warnings():  # the library's own sample loader warns under pandas 3
        warnings.simplefilter("ignore")
        return cl.load_sample("raa")


def _volume_weighted_ultimates(cum: np.ndarray) -> np.ndarray:
    """Chain-ladder ultimates by hand: volume-weighted link ratios of a cumulative square
    with NaN below the diagonal (a second method beside the library)."""
    n = cum.shape[1]
    factors = []
    for j in range(n - 1):
        rows = ~np.isnan(cum[:, j + 1])
        factors.append(cum[rows, j + 1].sum() / cum[rows, j].sum())
    ult = []
    for row in cum:
        k = int(np.flatnonzero(~np.isnan(row))[-1])
        ult.append(row[k] * np.prod(factors[k:]))
    return np.array(ult)


def test_chain_ladder_matches_mack_1993_on_raa(raa):
    latest, ultimate, se = complete_column(raa, "chain-ladder")
    cum = raa.values[0, 0]
    np.testing.assert_allclose(ultimate, _volume_weighted_ultimates(cum), rtol=1e-9)
    # the oldest year's completion is the product of every published factor (3 digits)
    assert ultimate[-1] / latest[-1] == pytest.approx(np.prod(MACK_FACTORS), rel=5e-3)
    for i, year in enumerate(raa.origin.year):
        if year in MACK_RESERVE:
            reserve, error = MACK_RESERVE[year]
            assert ultimate[i] - latest[i] == pytest.approx(reserve, abs=1)
            assert se[i] == pytest.approx(error, abs=1)


def test_bornhuetter_ferguson_is_its_closed_form(raa):
    """BF ultimate = latest + prior x (1 - 1/CDF), CDF from the chain ladder; the prior is
    the earlier years' trended cost per unit of exposure."""
    latest, cl_ult, cl_se = complete_column(raa, "chain-ladder")
    exposure = np.linspace(10.0, 19.0, len(latest))
    _, bf, bf_se = complete_column(raa, "bornhuetter-ferguson", exposure)
    prior = trend_prior(cl_ult, exposure)
    np.testing.assert_allclose(bf, latest + prior * (1 - latest / cl_ult), rtol=1e-9)
    # its error follows what is still to come
    to_come = (bf - latest)[1:] / (cl_ult - latest)[1:]
    np.testing.assert_allclose(bf_se[1:], cl_se[1:] * np.abs(to_come), rtol=1e-9)
    # the latest year's prior from ciplan's own forecast replaces the trend's there
    _, own, _ = complete_column(raa, "bornhuetter-ferguson", exposure, latest_prior=25_000.0)
    assert own[-1] == pytest.approx(latest[-1] + 25_000.0 * (1 - latest[-1] / cl_ult[-1]))
    np.testing.assert_allclose(own[:-1], bf[:-1], rtol=1e-12)
    # the trend prior: exactly log-linear rates are extrapolated exactly
    rates = np.exp(0.1 * np.arange(5))
    np.testing.assert_allclose(trend_prior(rates * 2.0, np.full(5, 2.0))[2:],
                               2.0 * rates[2:], rtol=1e-9)


def test_lognormal_interval_holds_its_mean_and_level():
    rng = np.random.default_rng(0)
    low, high, log_sd = lognormal_interval(100.0, 20.0, 0.9)
    s2 = np.log1p(0.04)
    draws = np.exp(rng.normal(np.log(100) - s2 / 2, np.sqrt(s2), 200_000))
    assert low < draws.mean() < high and log_sd == pytest.approx(np.sqrt(s2))
    assert np.mean((draws >= low) & (draws <= high)) == pytest.approx(0.9, abs=0.005)


def _known(claims: pd.DataFrame, as_of: datetime.date) -> pd.DataFrame:
    settled = pd.to_datetime(claims["settlement_date"])
    return claims.assign(settled=settled)[settled <= pd.Timestamp(as_of)]


@pytest.mark.parametrize("as_of", [datetime.date(2022, 1, 31), datetime.date(2022, 1, 15)])
def test_triangles_hold_what_was_settled_at_each_month(small_city, as_of):
    """Each diagonal of the triangles is what was settled by as_of minus whole months, per
    service year; the latest holds the claimants the as-of cells count."""
    claims = small_city.claims[small_city.claims["year"] <= 2021]
    known = _known(claims, as_of)
    tri = triangles(lag_records(known), as_of).dev_to_val()
    cost = tri["cost"].values[0, 0]
    for back in (0, 1, 5):
        date = pd.Timestamp(as_of) - pd.DateOffset(months=back)
        part = known[known["settled"] <= date]
        expected = part.groupby("year")["eligible_cost"].sum().reindex([2019, 2020, 2021])
        got = cost[:, cost.shape[1] - 1 - back]
        np.testing.assert_allclose(np.nan_to_num(got), expected.fillna(0).to_numpy(),
                                   rtol=1e-9)
    counts = tri["claimants"].values[0, 0][:, -1]
    annual = known.groupby(["member_id", "year"])["eligible_cost"].sum()
    by_year = (annual > 0).groupby(level="year").sum()
    np.testing.assert_array_equal(counts, by_year.to_numpy())


def test_a_tail_factor_develops_every_year_beyond_the_oldest_age(raa):
    """tail = 1.05: every origin's ultimate is its tail-free chain ladder times 1.05 (the
    oldest, complete without a tail, is its latest times 1.05)."""
    latest, plain, _ = complete_column(raa, "chain-ladder")
    _, tailed, _ = complete_column(raa, "chain-ladder", tail=1.05)
    np.testing.assert_allclose(tailed, plain * 1.05, rtol=1e-9)
    assert tailed[0] == pytest.approx(latest[0] * 1.05)


def test_the_error_is_at_least_the_odp_process_error(raa, small_city):
    """se >= sqrt(scale x amount to come), the over-dispersed Poisson process error with
    the triangle's own Pearson scale; on RAA Mack's error is the larger (the published
    figures stay), on a monthly triangle whose late periods have one origin the floor
    gives the older years a width Mack's extrapolated sigma does not."""
    latest, ultimate, se = complete_column(raa, "chain-ladder")
    assert np.all(se >= np.sqrt(odp_scale(raa) * (ultimate - latest)) - 1e-9)
    claims = small_city.claims[small_city.claims["year"] <= 2021]
    tri = triangles(lag_records(_known(claims, AS_OF)), AS_OF)["cost"]
    latest, ultimate, se = complete_column(tri, "chain-ladder")
    floor = np.sqrt(odp_scale(tri) * np.maximum(ultimate - latest, 0))
    assert np.all(se >= floor - 1e-9) and np.all(se[ultimate > latest * (1 + 1e-9)] > 0)
