"""Frequency models: parameter recovery on cells with known rates, statsmodels agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.metrics import mean_poisson_deviance

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.features import age_midpoint
from forecasting.models.frequency import GBMFrequency, PoissonFrequencyGLM
from forecasting.models.warnings import ModelWarning

TRUE = {"intercept": np.log(0.05), "age_per_10y": 0.22, "sex=M": 0.08, "residence=rural": -0.08,
        "special_group": 0.30, "trend": 0.03}


@pytest.fixture(scope="module")
def known_cells(small_city) -> pd.DataFrame:
    """The small city's cells with claimant counts redrawn from a known log-linear model."""
    cells = aggregate(small_city.members,
                      annual_costs(small_city.members, small_city.claims)).table.copy()
    cells["exposure"] *= 50  # a bigger city: tight estimates, same structure
    eta = (TRUE["intercept"]
           + TRUE["age_per_10y"] * (age_midpoint(cells["age_band"]) - 40) / 10
           + TRUE["sex=M"] * (cells["sex"].astype(str) == "M")
           + TRUE["residence=rural"] * (cells["residence"].astype(str) == "rural")
           + TRUE["special_group"] * cells["special_group"]
           + TRUE["trend"] * (cells["year"] - 2019))
    cells["true_rate"] = np.exp(eta.astype(float))
    rng = np.random.default_rng(42)
    cells["claimants"] = rng.poisson(cells["true_rate"] * cells["exposure"])
    return cells


def _fit(model, cells):
    return model.fit(cells, cells["claimants"] / cells["exposure"],
                     sample_weight=cells["exposure"])


def test_linear_glm_recovers_parameters_within_standard_errors(known_cells):
    glm = _fit(PoissonFrequencyGLM(age="linear"), known_cells)
    est = np.r_[glm.intercept_, glm.coef_]
    truth = np.array([TRUE["intercept"], *(TRUE[n] for n in glm.feature_names_)])
    z = (est - truth) / glm.standard_errors()
    assert np.all(np.abs(z) < 3.5), dict(zip(["intercept", *glm.feature_names_], z,
                                             strict=True))


def test_glm_matches_statsmodels_with_offset(known_cells):
    """An independent implementation: counts with log(exposure) offset."""
    glm = _fit(PoissonFrequencyGLM(age="linear"), known_cells)
    Z = sm.add_constant(glm.design_.transform(known_cells))
    ref = sm.GLM(known_cells["claimants"].to_numpy(), Z, family=sm.families.Poisson(),
                 offset=np.log(known_cells["exposure"].to_numpy())).fit()
    np.testing.assert_allclose(np.r_[glm.intercept_, glm.coef_], ref.params, atol=1e-5)
    np.testing.assert_allclose(glm.standard_errors(), ref.bse, rtol=1e-3)


def test_spline_glm_recovers_age_curve(known_cells):
    glm = _fit(PoissonFrequencyGLM(age="spline"), known_cells)
    grid = pd.DataFrame({"year": 2019, "age_band": np.arange(0, 90, 5), "sex": "F",
                         "residence": "urban", "special_group": False})
    eta = glm.linear_predictor(grid)
    Z1 = np.hstack([np.ones((len(grid), 1)), glm.design_.transform(grid)])
    se = np.sqrt(np.einsum("ij,jk,ik->i", Z1, glm.covariance_, Z1))
    truth = TRUE["intercept"] + TRUE["age_per_10y"] * (age_midpoint(grid["age_band"]) - 40) / 10
    assert np.all(np.abs(eta - truth) < 3.5 * se)
    assert glm.coef_[-1] == pytest.approx(TRUE["trend"], abs=3.5 * glm.standard_errors()[-1])


def test_gbm_beats_a_constant_rate(known_cells):
    train = known_cells[known_cells["year"] < 2022]
    test = known_cells[known_cells["year"] == 2022]
    gbm = _fit(GBMFrequency(), train)
    pred = gbm.predict(test)
    assert (pred > 0).all()
    y = test["claimants"] / test["exposure"]
    const = np.full(len(test), train["claimants"].sum() / train["exposure"].sum())
    w = test["exposure"]
    assert mean_poisson_deviance(y, pred, sample_weight=w) < mean_poisson_deviance(
        y, const, sample_weight=w)


def test_negative_frequency_refused(known_cells):
    with pytest.raises(ValueError, match=">= 0"):
        PoissonFrequencyGLM().fit(known_cells, -np.ones(len(known_cells)))


def _band_contrast(glm, band: int) -> tuple[float, float]:
    """log(men / women) in one age band of a band GLM with an age x sex interaction, and
    its standard error (from the coefficients' covariance)."""
    names = ["intercept", *glm.feature_names_]
    row = np.zeros(len(names))
    row[names.index("sex=M")] = 1
    if f"sex=M:age_{band}" in names:
        row[names.index(f"sex=M:age_{band}")] = 1
    return float(row @ np.r_[glm.intercept_, glm.coef_]), float(
        np.sqrt(row @ glm.covariance_ @ row))


def test_claim_counts_recover_the_age_sex_interaction(health_ds, health):
    """On the second portfolio, claim counts carry log 3 more for women aged 25-39: the
    one-hot band GLM with an age x sex interaction recovers every band's contrast, and
    the district effects, within 3.5 standard errors."""
    t = health_ds.cells.table
    glm = _fit_counts(PoissonFrequencyGLM(age="bands", age_band_width=5,
                                          interactions=("sex",), keys=health_ds.cells.spec.keys),
                      t)
    truth = health.truth
    for band in range(20, 80, 5):
        est, se = _band_contrast(glm, band)
        expected = truth.sex_male - (truth.young_women if 25 <= band < 40 else 0.0)
        assert abs(est - expected) < 3.5 * se, (band, est, expected, se)
    coef = dict(zip(glm.feature_names_, glm.coef_, strict=True))
    errors = dict(zip(glm.feature_names_, glm.standard_errors()[1:], strict=True))
    for i, name in enumerate(("D2", "D3", "D4"), start=1):
        assert abs(coef[f"district={name}"] - truth.district[i]) < 3.5 * errors[
            f"district={name}"]
    assert abs(coef["trend"] - truth.freq_trend) < 3.5 * errors["trend"]


def _fit_counts(model, cells):
    return model.fit(cells, cells["claims"] / cells["exposure"],
                     sample_weight=cells["exposure"])


def test_additive_model_cannot_hold_the_interaction(health_ds):
    """Held out (the last year), the interaction model beats the additive band GLM, and
    cross-validation of the spline's knots keeps its knots inside the data's ages."""
    t = health_ds.cells.table
    keys = health_ds.cells.spec.keys
    train, test = t[t["year"] < 2023], t[t["year"] == 2023]
    y, w = test["claims"] / test["exposure"], test["exposure"]
    scores = {}
    for name, model in {"additive": PoissonFrequencyGLM(age="bands", age_band_width=5,
                                                        keys=keys),
                        "interaction": PoissonFrequencyGLM(age="spline",
                                                           interactions=("sex",), keys=keys)
                        }.items():
        fitted = _fit_counts(model, train)
        scores[name] = mean_poisson_deviance(y, fitted.predict(test), sample_weight=w)
    assert scores["interaction"] < scores["additive"]
    assert fitted.n_knots_ in fitted.cv_scores_ and len(fitted.cv_scores_) > 1
    low, high = fitted.design_.knots_[[0, -1]]
    assert low >= 17 and high <= 83  # the ages held (bands 15-19 ... 80-84), not 0-100


def test_gbm_settings_scale_with_the_cells(health_ds):
    """On a table of 30 cells a GBM with leaves of 20 is a constant rate, and says so;
    with settings scaled to the cells it ranks them."""
    t = health_ds.cells.table
    small = (t[(t["year"] == 2022) & (t["district"] == "D1")].groupby(
        ["year", "age_band", "sex", "district"], as_index=False, observed=True)[
        ["claims", "exposure"]].sum().head(30))
    assert len(small) >= 24
    keys = ("sex", "district")
    with pytest.warns(ModelWarning, match="constant rate"):
        fixed = _fit_counts(GBMFrequency(min_samples_leaf=20, keys=keys), small)
    assert fixed.constant_
    scaled = _fit_counts(GBMFrequency(keys=keys), small)
    assert not scaled.constant_ and scaled.min_samples_leaf_ < 20
    assert np.ptp(scaled.predict(small)) > 0


def test_fit_on_single_ages_equals_member_rows(small_city):
    """Cells at single years of age hold everything member rows hold: a spline GLM fitted
    on them has the coefficients statsmodels finds on the member rows themselves."""
    from forecasting.data.cells import aggregate, annual_costs
    from forecasting.data.cohorts import CohortSpec

    members = small_city.members[small_city.members["year"] <= 2020]
    claims = small_city.claims[small_city.claims["year"] <= 2020]
    annual = annual_costs(members, claims)
    fine = aggregate(members, annual, CohortSpec().fine()).table
    glm = PoissonFrequencyGLM(age="spline", n_knots=5, band_width=1,
                              keys=("sex", "residence", "special_group"), alpha=0.0)
    glm.fit(fine, fine["claimants"] / fine["exposure"], sample_weight=fine["exposure"])
    rows = members.assign(age_band=members["age"])
    X = sm.add_constant(glm.design_.transform(rows))
    ref = sm.GLM((annual > 0).astype(float), X, family=sm.families.Poisson(),
                 offset=np.log(members["exposure"].to_numpy())).fit()
    np.testing.assert_allclose(np.r_[glm.intercept_, glm.coef_], ref.params, atol=1e-5)


def test_cv_scores_match_a_plain_recomputation(known_cells):
    """The cross-validation's shortcuts (one design pass per fold, its own deviance) give
    the scores of the textbook loop: each fold's design on its own rows, scikit-learn's
    mean Poisson deviance (the GLM solver itself is checked against statsmodels above)."""
    from sklearn.model_selection import KFold

    from forecasting.models.frequency import _poisson

    t = known_cells
    y, w = (t["claimants"] / t["exposure"]).to_numpy(), t["exposure"].to_numpy(float)
    fitted = PoissonFrequencyGLM(age="spline").fit(t, y, sample_weight=w)
    assert len(fitted.cv_scores_) > 1
    folds = list(KFold(fitted.cv_folds, shuffle=True, random_state=fitted.random_state)
                 .split(t))
    for setting, score in fitted.cv_scores_.items():
        total = 0.0
        for train, test in folds:
            design = fitted._design(setting).fit(t.iloc[train], w[train])
            glm = _poisson(design.transform(t.iloc[train]), y[train], w[train], fitted.alpha)
            pred = glm.predict(design.transform(t.iloc[test]))
            total += mean_poisson_deviance(y[test], pred, sample_weight=w[test]) * w[test].sum()
        assert score == pytest.approx(total / w.sum(), rel=1e-9)
