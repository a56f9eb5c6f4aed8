"""Severity models on simulated claimants with known generating parameters."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.models.severity import (
    BlendedSeverity,
    GammaSeverityGLM,
    SplicedSeverityModel,
    lev_matrix,
)
from forecasting.models.spliced import SplicedSeverity
from forecasting.models.warnings import ModelWarning

BASE = SplicedSeverity(np.log(4_500), 1.1, 60_000, 0.012, 2.5)


@pytest.fixture(scope="module")
def claimants() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Claimants whose cost scale is log-linear: +0.1 male, -0.1 rural, +4 % a year."""
    rng = np.random.default_rng(3)
    n = 120_000
    frame = pd.DataFrame({
        "year": rng.integers(2019, 2022, n), "age_band": rng.integers(0, 18, n) * 5,
        "sex": rng.choice(["F", "M"], n), "residence": rng.choice(["urban", "rural"], n),
        "special_group": rng.random(n) < 0.05})
    log_s = (0.1 * (frame["sex"] == "M") - 0.1 * (frame["residence"] == "rural")
             + 0.04 * (frame["year"] - 2019)).to_numpy(float)
    cost = np.exp(log_s) * BASE.sample(rng, n)
    return frame, cost, np.exp(log_s)


def test_gamma_glm_recovers_relative_means(claimants):
    frame, cost, _scale = claimants
    glm = GammaSeverityGLM(age="linear").fit(frame, cost)
    names = glm.design_.names()
    coef = dict(zip(names, glm.coef_, strict=True))
    assert coef["sex=M"] == pytest.approx(0.1, abs=0.03)
    assert coef["residence=rural"] == pytest.approx(-0.1, abs=0.03)
    assert coef["trend"] == pytest.approx(0.04, abs=0.02)
    assert glm.predict(frame).mean() == pytest.approx(cost.mean(), rel=0.02)


def test_spliced_model_prices_layers_like_the_truth(claimants):
    frame, cost, scale = claimants
    model = SplicedSeverityModel().fit(frame, cost)
    row = frame.iloc[[0]]
    fitted = model.distributions(row)[0]
    truth = SplicedSeverity(BASE.mu, BASE.sigma, BASE.threshold, BASE.tail_prob, BASE.alpha,
                            scale[0])
    for a, b in [(0, 15_000), (15_000, 50_000), (50_000, 200_000)]:
        assert fitted.layer(a, b) == pytest.approx(truth.layer(a, b), rel=0.06)


def test_truncated_model_recovers_what_it_did_not_see(claimants):
    frame, cost, scale = claimants
    seen = cost > 5_000
    model = SplicedSeverityModel(reported_above=5_000).fit(frame[seen], cost[seen])
    naive = SplicedSeverityModel().fit(frame[seen], cost[seen])
    row = frame.iloc[[0]]
    truth = SplicedSeverity(BASE.mu, BASE.sigma, BASE.threshold, BASE.tail_prob, BASE.alpha,
                            scale[0])
    below = truth.layer(0, 5_000)
    assert model.distributions(row)[0].layer(0, 5_000) == pytest.approx(below, rel=0.08)
    assert abs(naive.distributions(row)[0].layer(0, 5_000) - below) > 0.2 * below
    assert model.predict(row)[0] == pytest.approx(truth.mean(), rel=0.08)


def test_blend_weights_empirical_and_parametric():
    costs = np.array([1_000.0, 20_000.0, 80_000.0])
    blend = BlendedSeverity(BASE, costs, credibility=0.25)
    emp = np.minimum(costs, 50_000).mean()
    assert blend.lev(50_000) == pytest.approx(0.25 * emp + 0.75 * BASE.lev(50_000))
    assert BlendedSeverity(BASE, costs, 0.0).layer(0, 50_000) == pytest.approx(
        BASE.layer(0, 50_000))


def _district(row) -> int:
    return int(str(row["district"])[1:]) - 1


def test_splice_point_recovered_on_the_second_portfolio(health_ds, health):
    """The splice point is chosen by profile likelihood: in cost units it lands within
    10 % of the generating one for the median cohort and year, within 30 % for every one
    (thin cohorts' scales are noisy), and the profile peaks there."""
    c = health_ds.cells.claimants
    model = SplicedSeverityModel(keys=health_ds.cells.spec.keys).fit(c, c["cost"].to_numpy())
    truth = health.truth
    cohorts = c.drop_duplicates(["year", "age_band", "sex", "district"])
    fitted = model.base_.threshold * model.scale(cohorts)
    true = truth.splice * np.exp(truth.log_scale(cohorts["age"], cohorts.apply(
        _district, axis=1), cohorts["year"]))
    ratio = pd.Series(fitted / np.asarray(true))
    assert abs(ratio.median() - 1) < 0.10 and (ratio - 1).abs().max() < 0.30, ratio.describe()
    profile = pd.DataFrame(model.splice_profile_)
    assert profile["log_likelihood"].idxmax() == int(np.argmin(np.abs(
        profile["threshold"] - model.base_.threshold)))
    assert model.joint_rows_ == len(c)
    # and the top layer (above twice the splice) is priced within 15 % of the truth
    row = cohorts.iloc[[0]]
    scale = float(np.asarray(true)[0]) / truth.splice
    true_dist = replace(truth.standard_severity(), scale=scale)
    top = 2 * truth.splice * scale
    assert model.distributions(row)[0].layer(top, np.inf) == pytest.approx(
        true_dist.layer(top, np.inf), rel=0.15)


def test_one_thin_year_gives_bounded_cohort_scales(health_ds):
    """Fitted on one year of 150 claimants, the age curve is held by the ridge and the
    clamp: no cohort, seen or not, gets a mean cost beyond the range of the costs seen."""
    c = health_ds.cells.claimants
    thin = c[c["year"] == 2020].sample(150, random_state=1)
    model = SplicedSeverityModel(keys=health_ds.cells.spec.keys, alpha=1e-3).fit(
        thin, thin["cost"].to_numpy())
    assert np.abs(model.coef_).max() < 5
    grid = pd.DataFrame([(2020, band, sex, d) for band in range(0, 90, 5)
                         for sex in ("F", "M") for d in ("D1", "D2", "D3", "D4")],
                        columns=["year", "age_band", "sex", "district"])
    means = model.predict(grid)
    assert np.isfinite(means).all()
    assert means.max() < thin["cost"].max() and means.min() > thin["cost"].min()


def test_reported_at_or_above_a_threshold(health, tmp_path):
    """Claims reported only at or above T, five annual costs just above T recorded as
    exactly T: the loader takes them with the rule at-or-above (and refuses them with
    "above", saying what to do); the truncated fit recovers the cost below T it never
    saw."""
    from forecasting.data.cohorts import CohortSpec
    from forecasting.data.dataset import load_data, write_data_dir
    from forecasting.data.options import DataOptions
    from forecasting.errors import InputError

    threshold = 60.0  # about the median cost: half the claimants are never seen
    my = health.member_years
    bumped = health
    at = my.index[(my["cost"] > threshold) & (my["cost"] < 1.05 * threshold)][:5]
    claims = health.claims.copy()
    years = pd.to_datetime(claims["service_date"]).dt.year
    for i in at:  # five member-years now cost exactly the threshold
        rows = np.flatnonzero((claims["member_id"] == my.at[i, "member_id"])
                              & (years == my.at[i, "year"]))
        claims.loc[claims.index[rows], "eligible_cost"] = threshold / len(rows)
    bumped = replace(health, claims=claims, member_years=my.assign(
        cost=my["cost"].where(~my.index.isin(at), threshold)))
    reported = bumped.report_from(threshold)
    data = write_data_dir(tmp_path / "d", reported.members, reported.claims, None, "csv")
    spec = CohortSpec(keys=("sex", "district"))
    with pytest.raises(InputError, match="at-or-above"):
        load_data(data, DataOptions(spec=spec, reported_above=threshold))
    ds = load_data(data, DataOptions(spec=spec, reported_above=threshold,
                                     threshold_rule="at-or-above"))
    c = ds.cells.claimants
    assert (c["cost"] >= threshold).all() and (c["cost"] == threshold).sum() >= 5
    model = SplicedSeverityModel(reported_above=threshold, keys=spec.keys).fit(
        c, c["cost"].to_numpy())
    row = c.iloc[[0]]
    truth = health.truth
    true = replace(truth.standard_severity(), scale=float(np.exp(truth.log_scale(
        row["age"], [_district(row.iloc[0])], row["year"]))[0]))
    assert model.distributions(row)[0].layer(0, threshold) == pytest.approx(
        true.layer(0, threshold), rel=0.1)
    assert model.reported_share_se_ < 0.2 * model.reported_share_


def test_a_weakly_identified_body_is_said(health):
    """Reported only from 120 (three claimants in four unseen), the share above the
    threshold is uncertain: the fit says how uncertain instead of dividing in silence."""
    from forecasting.data.cells import aggregate, annual_costs
    from forecasting.data.cohorts import CohortSpec

    reported = health.report_from(120.0)
    my = health.member_years
    members = my[["member_id", "year", "age", "district", "exposure"]].assign(
        special_group=False, sex=pd.Categorical(my["sex"], categories=["F", "M"]))
    claims = reported.claims.assign(year=pd.to_datetime(reported.claims["service_date"]).dt.year)
    cells = aggregate(members, annual_costs(members, claims),
                      CohortSpec(keys=("sex", "district")), 120.0, "at-or-above")
    c = cells.claimants
    with pytest.warns(ModelWarning, match="weakly identified"):
        model = SplicedSeverityModel(reported_above=120.0, keys=("sex", "district")).fit(
            c, c["cost"].to_numpy())
    assert model.reported_share_se_ > 0.2 * model.reported_share_


def test_a_tiny_reported_share_is_said(health_ds):
    """Above a threshold only 1-2 % of claimants cross, the fit warns that counts will be
    multiplied and the costs below are extrapolated."""
    c = health_ds.cells.claimants
    threshold = float(np.quantile(c["cost"], 0.985))
    seen = c[c["cost"] > threshold]
    with pytest.warns(ModelWarning, match="claimant counts are multiplied"):
        SplicedSeverityModel(reported_above=threshold, keys=("sex", "district")).fit(
            seen, seen["cost"].to_numpy())


def test_scales_from_distinct_cohorts_equal_the_scales_row_by_row(claimants):
    """log_scale builds the design once per distinct cohort and year; the result is the
    design of every row times the coefficients, clamped as documented."""
    frame, cost, _scale = claimants
    model = SplicedSeverityModel().fit(frame, cost)
    shuffled = frame.sample(frac=1.0, random_state=1)
    Z = model.design_.transform(shuffled)
    cohort = np.clip(Z[:, :-1] @ model.coef_[:-1], *model.eta_range_)
    direct = cohort + Z[:, -1] * model.coef_[-1]
    np.testing.assert_allclose(model.log_scale(shuffled), direct, rtol=0, atol=1e-12)


def test_gamma_scale_on_sufficient_statistics_equals_the_fit_on_every_claimant():
    """The first stage's Gamma GLM fitted on each distinct design row's mean cost weighted
    by its claimants gives the fit over every claimant (same objective up to a constant),
    and both recover the generating log-scale."""
    from forecasting.models.severity import _gamma, _gamma_grouped

    rng = np.random.default_rng(5)
    Zg = np.column_stack([np.linspace(-1, 1, 40), np.tile([0.0, 1.0], 20)])
    truth = np.array([0.4, -0.3])
    codes = rng.integers(0, 40, 60_000)
    y = rng.gamma(2.0, np.exp(8.0 + Zg[codes] @ truth) / 2.0)
    rows = _gamma(Zg[codes], y, 1e-8)
    grouped = _gamma_grouped(Zg, codes, y, 1e-8)
    np.testing.assert_allclose(grouped.coef_, rows.coef_, rtol=1e-6, atol=1e-9)
    assert grouped.intercept_ == pytest.approx(rows.intercept_, rel=1e-9)
    np.testing.assert_allclose(grouped.coef_, truth, atol=0.02)


@st.composite
def _severities(draw):
    """Cohorts of one or two fitted shapes (scales differ), some with past costs blended
    in, some parametric only, a few with a tail of mean infinity (alpha <= 1)."""
    shapes = [SplicedSeverity(draw(st.floats(6, 10)), draw(st.floats(0.3, 2)),
                              draw(st.floats(5e3, 5e5)), draw(st.floats(0.01, 0.3)),
                              draw(st.sampled_from([0.8, 1.0, 1.5, 2.5])))
              for _ in range(draw(st.integers(1, 2)))]
    out = []
    for i in range(draw(st.integers(0, 6))):
        parametric = replace(shapes[i % len(shapes)], scale=draw(st.floats(0.2, 5)))
        costs = np.array(draw(st.lists(st.floats(0, 1e6), max_size=8)))
        out.append(BlendedSeverity(parametric, costs, draw(st.sampled_from([0.0, 0.3, 0.9]))))
    return out


@settings(max_examples=80, deadline=None)
@given(sevs=_severities(), b=st.lists(st.one_of(st.floats(0, 2e6), st.just(np.inf)),
                                      min_size=1, max_size=6))
def test_lev_matrix_is_each_severitys_lev(sevs, b):
    """Every cohort at every level in one call: the values of each severity's own lev."""
    got = lev_matrix(sevs, b)
    assert got.shape == (len(sevs), len(b))
    for i, sev in enumerate(sevs):
        np.testing.assert_allclose(got[i], sev.lev(np.array(b, dtype="float64")),
                                   rtol=1e-12, atol=1e-9)


def test_a_tail_without_a_mean_is_bounded_and_said():
    """Few claimants splice at their median, where the upper half of a lognormal with
    sigma 1.6 looks like a Pareto of index 1 / (1.6 sqrt(2 / pi)) = 0.78: a tail with no
    mean, which made every backtest metric infinite (a traceback in `ciplan train`). The
    index is raised to MIN_TAIL_INDEX, so the mean exists, and the fit says so."""
    from scipy.stats import norm

    n = 80
    cost = np.random.default_rng(0).permutation(np.exp(9 + 1.6 * norm.ppf(
        (np.arange(n) + 0.5) / n)))
    frame = pd.DataFrame({"year": np.repeat([2020, 2021], n // 2), "age_band": 40})
    with pytest.warns(ModelWarning, match="no finite mean"):
        model = SplicedSeverityModel(keys=()).fit(frame, cost)
    assert model.base_.alpha > 1
    assert np.isfinite(model.predict(frame)).all()
    # the body is still the data's: the layer below the median priced as observed
    dist = model.distributions(frame.iloc[[0]])[0]
    median = float(np.median(cost))
    assert dist.layer(0, median) == pytest.approx(np.minimum(cost, median).mean(), rel=0.1)
