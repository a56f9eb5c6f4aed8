"""Severity models: the distribution of a claimant's annual eligible cost by cohort, with trend.

- GammaSeverityGLM: the mean by cohort (log link), the actuary's familiar benchmark.
- SplicedSeverityModel: a scale family X = s(cohort, year) * X0 with X0 a lognormal body and
  a Pareto tail (forecasting.models.spliced); s is log-linear in the cohort design. Fitted by
  maximum likelihood; data reported only above a threshold are fitted with the truncated
  likelihood, so layers below the threshold come from the distribution, never from zero.
- BlendedSeverity: a cohort's past claimants trended to the forecast year (empirical) blended
  with the parametric fit by credibility n / (n + k), so thin cohorts lean on the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import GammaRegressor
from sklearn.utils.validation import check_is_fitted

from forecasting.models.features import CohortDesign
from forecasting.models.spliced import SplicedSeverity, fit_spliced


def _costs(y) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    if (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("claimant costs must be finite and > 0 CNY")
    return y


class GammaSeverityGLM(RegressorMixin, BaseEstimator):
    """Gamma GLM, log link, for the mean annual cost of a claimant (CNY) by cohort."""

    def __init__(self, *, age: str = "spline", n_knots: int = 6, base_year: int = 2019,
                 alpha: float = 1e-8):
        self.age = age
        self.n_knots = n_knots
        self.base_year = base_year
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> GammaSeverityGLM:
        self.design_ = CohortDesign(self.age, self.n_knots, self.base_year).fit(X)
        Z = self.design_.transform(X)
        self.glm_ = GammaRegressor(alpha=self.alpha, max_iter=1000, tol=1e-10,
                               solver="newton-cholesky").fit(
            Z, _costs(y), sample_weight=sample_weight)
        self.coef_, self.intercept_ = self.glm_.coef_, float(self.glm_.intercept_)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean annual eligible cost per claimant, CNY."""
        check_is_fitted(self, "glm_")
        return self.glm_.predict(self.design_.transform(X))


class SplicedSeverityModel(RegressorMixin, BaseEstimator):
    """Spliced lognormal-Pareto severity with a log-linear cohort scale (see module doc).

    reported_above: costs were reported only above this (CNY); fitted by truncated likelihood.
    tail_quantile: the splice point u is this quantile of the scale-free costs.
    Fitted: coef_ (log-scale per design column), base_ (SplicedSeverity of X0).
    """

    def __init__(self, *, reported_above: float = 0.0, tail_quantile: float = 0.97,
                 n_knots: int = 6, base_year: int = 2019, max_joint_rows: int = 20_000,
                 random_state: int = 0):
        self.reported_above = reported_above
        self.tail_quantile = tail_quantile
        self.n_knots = n_knots
        self.base_year = base_year
        self.max_joint_rows = max_joint_rows
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> SplicedSeverityModel:
        y = _costs(y)
        if (y <= self.reported_above).any():
            raise ValueError("costs must exceed reported_above")
        self.design_ = CohortDesign("spline", self.n_knots, self.base_year).fit(X)
        Z = self.design_.transform(X)
        # Stage 1: the scale from a Gamma GLM of the mean; exact enough when nothing is
        # truncated, a starting point when something is.
        glm = GammaRegressor(alpha=1e-8, max_iter=1000, tol=1e-10,
                               solver="newton-cholesky").fit(Z, y)
        coef = glm.coef_
        x0 = y / np.exp(Z @ coef)
        u = float(np.quantile(x0, self.tail_quantile))
        trunc = self.reported_above / np.exp(Z @ coef)
        base = fit_spliced(x0, u, trunc if self.reported_above > 0 else 0.0)
        if self.reported_above > 0:
            coef, base = self._joint(Z, y, coef, base)
        self.coef_, self.base_ = coef, base
        return self

    def _joint(self, Z, y, coef, base):
        """Stage 2 under truncation: scale and distribution together by maximum likelihood."""
        rng = np.random.default_rng(self.random_state)
        rows = rng.permutation(len(y))[: self.max_joint_rows]
        Z, y = Z[rows], y[rows]
        p = Z.shape[1]

        def unpack(theta):
            dist = SplicedSeverity(theta[p], float(np.exp(theta[p + 1])), base.threshold,
                                   float(expit(theta[p + 2])), float(np.exp(theta[p + 3])))
            return theta[:p], dist

        def nll(theta):
            b, dist = unpack(theta)
            s = np.exp(Z @ b)
            ll = dist.logpdf(y / s) - np.log(s)
            ll -= np.log(np.maximum(1 - dist.cdf(self.reported_above / s), 1e-300))
            return -ll.mean()

        start = np.r_[coef, base.mu, np.log(base.sigma), logit(base.tail_prob),
                      np.log(base.alpha)]
        res = minimize(nll, start, method="L-BFGS-B")
        return unpack(res.x)

    def scale(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "base_")
        return np.exp(self.design_.transform(X) @ self.coef_)

    def distributions(self, X: pd.DataFrame) -> list[SplicedSeverity]:
        """The fitted severity distribution of each row's cohort and year."""
        b = self.base_
        return [SplicedSeverity(b.mu, b.sigma, b.threshold, b.tail_prob, b.alpha, float(s))
                for s in self.scale(X)]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean annual eligible cost per claimant, CNY."""
        return self.scale(X) * self.base_.mean()


def empirical_lev(costs: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of min(cost, b_j) over the costs, for each b_j (sorted once, O((n + m) log n))."""
    x = np.sort(costs)
    cum = np.concatenate([[0.0], np.cumsum(x)])
    pos = np.searchsorted(x, b)  # costs below each b
    return (cum[pos] + np.where(np.isfinite(b), b, 0.0) * (len(x) - pos)) / len(x)


@dataclass(frozen=True)
class BlendedSeverity:
    """A cohort's severity: credibility blend of trended past costs and the parametric fit."""

    parametric: SplicedSeverity
    costs: np.ndarray  # past claimants' annual costs trended to the forecast year, CNY
    credibility: float  # weight of the empirical part, n / (n + k); 0 under truncation

    def to_dict(self) -> dict:
        """Plain JSON data (the forecast folder's format): parametric part, costs, weight."""
        return {"parametric": self.parametric.to_dict(), "costs": self.costs.tolist(),
                "credibility": float(self.credibility)}

    @classmethod
    def from_dict(cls, data: dict) -> BlendedSeverity:
        """The inverse of `to_dict`, for data from outside: ValueError unless the costs are
        finite and >= 0 and the credibility lies in [0, 1]."""
        costs = np.asarray(data["costs"], dtype="float64")
        credibility = float(data["credibility"])
        if costs.ndim != 1 or not (np.isfinite(costs).all() and (costs >= 0).all()):
            raise ValueError("severity costs must be a list of finite costs >= 0")
        if not 0 <= credibility <= 1:
            raise ValueError(f"credibility = {credibility!r}; expected a weight in [0, 1]")
        return cls(SplicedSeverity.from_dict(data["parametric"]), costs, credibility)

    def lev(self, b) -> np.ndarray:
        """E[min(X, b)] in CNY."""
        param = self.parametric.lev(b)
        if self.credibility == 0 or self.costs.size == 0:
            return param
        b_arr = np.atleast_1d(np.asarray(b, dtype="float64"))
        emp = empirical_lev(self.costs, b_arr)
        out = self.credibility * emp + (1 - self.credibility) * np.atleast_1d(param)
        return out if np.ndim(b) else float(out[0])

    def cdf(self, x) -> np.ndarray:
        """P(X <= x): the same credibility blend of the past costs' and the fit's."""
        param = np.asarray(self.parametric.cdf(x), dtype="float64")
        if self.credibility == 0 or self.costs.size == 0:
            return param
        emp = np.searchsorted(np.sort(self.costs), np.asarray(x, dtype="float64"),
                              side="right") / self.costs.size
        return self.credibility * emp + (1 - self.credibility) * param

    def layer(self, a: float, b: float) -> float:
        """Expected cost per claimant inside [a, b) CNY."""
        return float(np.asarray(self.lev(b)) - np.asarray(self.lev(a)))

    def mean(self) -> float:
        return self.layer(0.0, np.inf)
