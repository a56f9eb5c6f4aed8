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

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import GammaRegressor
from sklearn.utils.validation import check_is_fitted

from forecasting.models.features import CohortDesign
from forecasting.models.spliced import SplicedSeverity, choose_splice, fit_spliced
from forecasting.models.threads import single_threaded
from forecasting.models.warnings import ModelWarning

MIN_REPORTED_SHARE = 0.05  # below this share of claimants above T, the forecast says so


def _costs(y) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    if (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("claimant costs must be finite and > 0")
    return y


def _gamma(Z: np.ndarray, y: np.ndarray, alpha: float, weight=None) -> GammaRegressor:
    return GammaRegressor(alpha=alpha, max_iter=1000, tol=1e-10,
                          solver="newton-cholesky").fit(Z, y, sample_weight=weight)


class GammaSeverityGLM(RegressorMixin, BaseEstimator):
    """Gamma GLM, log link, for the mean annual cost of a claimant by cohort (money units
    of the data). keys, band_width: as in PoissonFrequencyGLM."""

    def __init__(self, *, age: str = "spline", n_knots: int = 6, base_year: int = 2019,
                 alpha: float = 1e-8, keys: tuple[str, ...] | None = None,
                 band_width: int = 5):
        self.age = age
        self.n_knots = n_knots
        self.base_year = base_year
        self.alpha = alpha
        self.keys = keys
        self.band_width = band_width

    @single_threaded
    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> GammaSeverityGLM:
        self.design_ = CohortDesign(self.age, self.n_knots, self.base_year, self.band_width,
                                    self.keys).fit(X)
        Z = self.design_.transform(X)
        self.glm_ = _gamma(Z, _costs(y), self.alpha, sample_weight)
        self.coef_, self.intercept_ = self.glm_.coef_, float(self.glm_.intercept_)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean annual eligible cost per claimant (money units of the data)."""
        check_is_fitted(self, "glm_")
        return self.glm_.predict(self.design_.transform(X))


class SplicedSeverityModel(RegressorMixin, BaseEstimator):
    """Spliced lognormal-Pareto severity with a log-linear cohort scale (see module doc).

    reported_above: costs were reported only from this threshold on (money units of the
    data); fitted by truncated likelihood, which is the same for "above" and "at or above"
    (a continuous cost equals the threshold with probability 0).
    tail_quantile: the splice point u is this quantile of the scale-free costs; None =
    chosen by profile likelihood over SPLICE_QUANTILES (splice_profile_ keeps the table).
    alpha: ridge penalty on the cohort scale's coefficients (unit-free: the Gamma deviance
    is relative), so that one year of few claimants cannot give an age curve of +-600.
    max_joint_rows: None = every claimant in the truncated joint fit; a number = a random
    subsample of that size, stated in joint_rows_ and by a ModelWarning.
    Fitted: coef_ (log-scale per design column), base_ (SplicedSeverity of X0),
    eta_range_ (the cohort part of the log-scale seen in training: predictions are clamped
    to it, so a cohort without claimants gets no extrapolated scale), reported_share_.
    """

    def __init__(self, *, reported_above: float = 0.0, tail_quantile: float | None = None,
                 n_knots: int = 6, base_year: int = 2019, alpha: float = 1e-3,
                 keys: tuple[str, ...] | None = None, band_width: int = 5,
                 max_joint_rows: int | None = None, random_state: int = 0):
        self.reported_above = reported_above
        self.tail_quantile = tail_quantile
        self.n_knots = n_knots
        self.base_year = base_year
        self.alpha = alpha
        self.keys = keys
        self.band_width = band_width
        self.max_joint_rows = max_joint_rows
        self.random_state = random_state

    @single_threaded
    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> SplicedSeverityModel:
        y = _costs(y)
        if (y < self.reported_above).any():
            raise ValueError("costs must reach reported_above")
        self.design_ = CohortDesign("spline", self.n_knots, self.base_year, self.band_width,
                                    self.keys).fit(X)
        Z = self.design_.transform(X)
        # Stage 1: the scale from a Gamma GLM of the mean; exact enough when nothing is
        # truncated, a starting point when something is.
        glm = _gamma(Z, y, self.alpha)
        coef = glm.coef_
        x0 = y / np.exp(Z @ coef)
        trunc = self.reported_above / np.exp(Z @ coef)
        base = self._splice(x0, trunc if self.reported_above > 0 else np.zeros_like(x0))
        self.joint_rows_ = len(y)
        if self.reported_above > 0:
            coef, base = self._joint(Z, y, coef, base)
        self.coef_, self.base_ = coef, base
        cohort = Z[:, :-1] @ coef[:-1]
        self.eta_range_ = (float(cohort.min()), float(cohort.max()))
        self.n_features_in_ = Z.shape[1]
        self._say_what_truncation_means(Z)
        return self

    def _splice(self, x0: np.ndarray, trunc: np.ndarray) -> SplicedSeverity:
        if self.tail_quantile is not None:
            u = float(np.quantile(x0, self.tail_quantile))
            self.splice_profile_ = [{"threshold": u, "share_above": float((x0 > u).mean()),
                                     "log_likelihood": float("nan")}]
            return fit_spliced(x0, u, trunc)
        base, self.splice_profile_ = choose_splice(x0, trunc)
        return base

    def _joint(self, Z, y, coef, base):
        """Stage 2 under truncation: scale and distribution together by maximum likelihood,
        on every claimant (or the subsample max_joint_rows asks for, said aloud)."""
        if self.max_joint_rows is not None and len(y) > self.max_joint_rows:
            rows = np.random.default_rng(self.random_state).permutation(len(y))[
                : self.max_joint_rows]
            Z, y = Z[rows], y[rows]
            self.joint_rows_ = len(rows)
            warnings.warn(ModelWarning(
                f"the truncated severity fit used a random {len(rows):,} of the claimants "
                f"(max_joint_rows)"), stacklevel=3)
        unique, inverse = np.unique(Z, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        logy = np.log(y)
        p = Z.shape[1]

        def unpack(theta):
            dist = SplicedSeverity(theta[p], float(np.exp(theta[p + 1])), base.threshold,
                                   float(expit(theta[p + 2])), float(np.exp(theta[p + 3])))
            return theta[:p], dist

        def nll(theta):
            b, dist = unpack(theta)
            log_s = unique @ b
            s = np.exp(log_s)
            ll = dist.logpdf(np.exp(logy - log_s[inverse])) - log_s[inverse]
            cut = np.log(np.maximum(1 - dist.cdf(self.reported_above / s), 1e-300))
            return -(ll.mean() - cut[inverse].mean()) + 0.5 * self.alpha * (b @ b)

        start = np.r_[coef, base.mu, np.log(base.sigma), logit(base.tail_prob),
                      np.log(base.alpha)]
        res = minimize(nll, start, method="L-BFGS-B")
        return unpack(res.x)

    def _say_what_truncation_means(self, Z: np.ndarray) -> None:
        """Under truncation: the share of claimants above the threshold (the forecast
        divides counts by it) and whether the body below it is seen at all."""
        if self.reported_above <= 0:
            self.reported_share_ = 1.0
            return
        scales = np.exp(Z @ self.coef_)
        share = float(np.mean(1 - self.base_.cdf(self.reported_above / scales)))
        self.reported_share_ = share
        if share < MIN_REPORTED_SHARE:
            warnings.warn(ModelWarning(
                f"only {share:.1%} of claimants lie above the reporting threshold "
                f"{self.reported_above:g}: claimant counts are multiplied by about "
                f"{1 / share:.0f} and the costs below the threshold are extrapolated from "
                "those above it; price per reported claim where you can"), stacklevel=3)
        if np.median(self.base_.threshold * scales) <= self.reported_above:
            warnings.warn(ModelWarning(
                f"the reporting threshold {self.reported_above:g} lies above the splice "
                "point of the fitted distribution for most cohorts: the body below the "
                "threshold is not identified by the data (its lognormal shape is assumed)"),
                stacklevel=3)

    def log_scale(self, X: pd.DataFrame) -> np.ndarray:
        """log of each row's scale: the cohort part clamped to eta_range_, plus the trend."""
        check_is_fitted(self, "base_")
        Z = self.design_.transform(X)
        cohort = np.clip(Z[:, :-1] @ self.coef_[:-1], *self.eta_range_)
        return cohort + Z[:, -1] * self.coef_[-1]

    def scale(self, X: pd.DataFrame) -> np.ndarray:
        return np.exp(self.log_scale(X))

    def distributions(self, X: pd.DataFrame) -> list[SplicedSeverity]:
        """The fitted severity distribution of each row's cohort and year."""
        b = self.base_
        return [SplicedSeverity(b.mu, b.sigma, b.threshold, b.tail_prob, b.alpha, float(s))
                for s in self.scale(X)]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean annual eligible cost per claimant (money units of the data)."""
        return self.scale(X) * self.base_.mean()

    @property
    def trend_(self) -> float:
        """Yearly log growth of the cost scale (the last design column)."""
        check_is_fitted(self, "coef_")
        return float(self.coef_[-1])


@dataclass(frozen=True)
class BlendedSeverity:
    """A cohort's severity: credibility blend of trended past costs and the parametric fit."""

    parametric: SplicedSeverity
    costs: np.ndarray  # past claimants' annual costs trended to the forecast year, CNY
    credibility: float  # weight of the empirical part, n / (n + k); 0 under truncation

    def lev(self, b) -> np.ndarray:
        """E[min(X, b)] in CNY."""
        param = self.parametric.lev(b)
        if self.credibility == 0 or self.costs.size == 0:
            return param
        b_arr = np.atleast_1d(np.asarray(b, dtype="float64"))
        emp = np.minimum(self.costs[:, None], b_arr[None, :]).mean(axis=0)
        out = self.credibility * emp + (1 - self.credibility) * np.atleast_1d(param)
        return out if np.ndim(b) else float(out[0])

    def layer(self, a: float, b: float) -> float:
        """Expected cost per claimant inside [a, b) CNY."""
        return float(np.asarray(self.lev(b)) - np.asarray(self.lev(a)))

    def mean(self) -> float:
        return self.layer(0.0, np.inf)
