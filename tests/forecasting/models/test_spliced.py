"""Layer prices against numerical integration and Monte Carlo; truncated fit recovers truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ndtri

from forecasting.models.spliced import SplicedSeverity, fit_spliced

DIST = SplicedSeverity(mu=np.log(4_500), sigma=1.1, threshold=60_000, tail_prob=0.012,
                       alpha=2.5, scale=1.3)


@pytest.mark.parametrize("b", [1_000, 15_000, 60_000 * 1.3, 100_000, 300_000, 2_000_000])
def test_lev_equals_integral_of_survival(b):
    """E[min(X,b)] = integral_0^b (1 - F(x)) dx, computed by quadrature."""
    edges = [0, 1_000, 10_000, 78_000, b] if b > 78_000 else [0, b]
    integral = sum(quad(lambda x: 1 - DIST.cdf(x), lo, hi, limit=200)[0]
                   for lo, hi in itertools.pairwise(edges) if hi > lo)
    assert DIST.lev(b) == pytest.approx(integral, rel=1e-6)


def test_layers_match_monte_carlo():
    x = DIST.sample(np.random.default_rng(0), 2_000_000)
    for a, b in [(0, 15_000), (15_000, 50_000), (50_000, 200_000), (200_000, np.inf)]:
        mc = (np.minimum(x, b) - np.minimum(x, a)).mean()
        se = (np.minimum(x, b) - np.minimum(x, a)).std() / np.sqrt(x.size)
        assert abs(DIST.layer(a, b) - mc) < 4 * se + 1e-9
    assert DIST.layer(0, np.inf) == pytest.approx(DIST.mean())


def test_cdf_is_a_distribution():
    grid = np.geomspace(1, 1e8, 400)
    cdf = DIST.cdf(grid)
    assert (np.diff(cdf) >= 0).all() and cdf[0] >= 0 and cdf[-1] == pytest.approx(1, abs=1e-6)
    # continuous at the splice point: P(X <= u) = 1 - pi from both sides
    u = DIST.threshold * DIST.scale
    assert DIST.cdf(u) == pytest.approx(1 - DIST.tail_prob)
    assert DIST.cdf(u * (1 + 1e-9)) == pytest.approx(1 - DIST.tail_prob, abs=1e-8)


def test_truncated_fit_recovers_truth_and_naive_fit_is_biased():
    truth = SplicedSeverity(mu=np.log(4_500), sigma=1.1, threshold=60_000, tail_prob=0.012,
                            alpha=2.5)
    x = truth.sample(np.random.default_rng(1), 400_000)
    seen = x[x > 3_000]  # reported only above 3,000 CNY
    fit = fit_spliced(seen, threshold=60_000, truncated_at=3_000)
    naive = fit_spliced(seen, threshold=60_000)
    assert fit.mu == pytest.approx(truth.mu, abs=0.05)
    assert fit.sigma == pytest.approx(truth.sigma, rel=0.05)
    assert fit.alpha == pytest.approx(truth.alpha, rel=0.1)
    # the layer below the reporting threshold comes from the fitted distribution, not zero
    assert fit.layer(0, 3_000) == pytest.approx(truth.layer(0, 3_000), rel=0.03)
    # ignoring truncation shifts the body up: measurably biased
    assert naive.mu - truth.mu > 0.3
    assert abs(naive.layer(0, 15_000) - truth.layer(0, 15_000)) > 0.1 * truth.layer(0, 15_000)


def test_ppf_inverts_cdf():
    q = np.linspace(0.001, 0.9999, 500)
    np.testing.assert_allclose(DIST.cdf(DIST.ppf(q)), q, rtol=1e-9, atol=1e-12)


def test_ppf_of_a_scalar_and_at_the_splice_and_the_ends():
    """Each quantile on its side of the splice (the body capped at the threshold, the
    Pareto tail above it), a scalar as an array of one; 0 and 1 kept finite at the ends
    (clipped: draws never return 0 or infinity)."""
    q_splice = 1 - DIST.tail_prob
    edges = np.array([0.0, np.nextafter(q_splice, 0), q_splice, np.nextafter(q_splice, 1),
                      1.0])
    x = DIST.ppf(edges)
    top = DIST.threshold * DIST.scale
    assert 0 < x[0] < DIST.ppf(1e-12) and DIST.ppf(1 - 1e-12) < x[-1] < np.inf
    assert x[1] <= top and x[2] == pytest.approx(top, rel=1e-9) and x[3] >= top
    np.testing.assert_allclose(DIST.cdf(x[1:4]), edges[1:4], rtol=1e-9)
    assert np.ndim(DIST.ppf(0.3)) == 0 and DIST.ppf(0.3) == DIST.ppf(np.array([0.3]))[0]


def _former_ppf(dist: SplicedSeverity, q):
    """The quantile function as it was before it was worked in place (one full-size
    temporary per step, the tail everywhere): the in-place one must equal it bit for bit."""
    q = np.asarray(q, dtype="float64")
    body_q = np.minimum(q / (1 - dist.tail_prob), 1.0) * dist._body_top()
    body = np.exp(dist.mu + dist.sigma * ndtri(np.clip(body_q, 1e-300, 1 - 1e-16)))
    tail = dist.threshold * (np.maximum(1 - q, 1e-300) / dist.tail_prob) ** (-1 / dist.alpha)
    return dist.scale * np.where(q <= 1 - dist.tail_prob, np.minimum(body, dist.threshold),
                                 tail)


def test_ppf_in_place_is_bit_identical_to_the_former_expression_of_any_shape():
    """Values and types: a scalar or a 0-d array gives a NumPy float (as `scale * where`
    gave), an array an array of its shape; q = 0, q = 1 and q at the splice included."""
    rng = np.random.default_rng(11)
    s = 1 - DIST.tail_prob
    for q in (0.0, 1.0, s, np.nextafter(s, 0), np.nextafter(s, 1), 0.3, np.float64(0.99),
              np.array(0.3), np.array(s), np.array(1.0), [0.1, s, 0.999],
              rng.random((3, 4, 5)), np.r_[0.0, 1.0, s, rng.random(10_001)], np.array([]),
              rng.random((6, 3))[:, 1], rng.random(9).astype(np.float32)):
        want, got = _former_ppf(DIST, q), DIST.ppf(q)
        assert type(got) is type(want) and np.shape(got) == np.shape(want), q
        np.testing.assert_array_equal(got, want)
