"""Severity models on simulated claimants with known generating parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models.severity import BlendedSeverity, GammaSeverityGLM, SplicedSeverityModel
from forecasting.models.spliced import SplicedSeverity

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
