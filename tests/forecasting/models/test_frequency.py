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
