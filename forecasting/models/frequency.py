"""Claim frequency per member-year by cohort, fitted on cells with exposure as weight.

Both models follow the scikit-learn contract: X is a frame of cell keys, y the observed
frequency (claimants / exposure), sample_weight the exposure (member-years). Because the
Poisson likelihood depends on member rows only through cell sums, fitting on cells is
exact, not an approximation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import PoissonRegressor
from sklearn.utils.validation import check_is_fitted

from forecasting.models.features import CohortDesign


def _check_xy(y, sample_weight, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype="float64")
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype="float64")
    if y.shape != (n,) or w.shape != (n,):
        raise ValueError("y and sample_weight need one value per row of X")
    if (y < 0).any() or not np.isfinite(y).all():
        raise ValueError("frequencies must be finite and >= 0")
    if (w < 0).any():
        raise ValueError("sample_weight (exposure) must be >= 0")
    return y, w


class PoissonFrequencyGLM(RegressorMixin, BaseEstimator):
    """Poisson GLM with log link: smooth age, sex, residence, special group, year trend.

    Fitted attributes: coef_, intercept_, covariance_ (inverse Fisher information of
    [intercept, coef]), feature_names_. predict gives claimants per member-year.
    """

    def __init__(self, *, age: str = "spline", n_knots: int = 6, base_year: int = 2019,
                 alpha: float = 1e-8):
        self.age = age
        self.n_knots = n_knots
        self.base_year = base_year
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> PoissonFrequencyGLM:
        self.design_ = CohortDesign(self.age, self.n_knots, self.base_year).fit(X)
        Z = self.design_.transform(X)
        y, w = _check_xy(y, sample_weight, len(Z))
        glm = PoissonRegressor(alpha=self.alpha, max_iter=1000, tol=1e-10,
                               solver="newton-cholesky").fit(
            Z, y, sample_weight=w)
        self.coef_, self.intercept_ = glm.coef_, float(glm.intercept_)
        self.feature_names_ = self.design_.names(X)
        mu = glm.predict(Z)
        Z1 = np.hstack([np.ones((len(Z), 1)), Z])
        fisher = Z1.T @ (Z1 * (w * mu)[:, None])
        self.covariance_ = np.linalg.pinv(fisher)
        return self

    def linear_predictor(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return self.intercept_ + self.design_.transform(X) @ self.coef_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected claimants per member-year for each row of X."""
        return np.exp(self.linear_predictor(X))

    def standard_errors(self) -> np.ndarray:
        """Standard errors of [intercept, coef] from the Fisher information."""
        check_is_fitted(self, "covariance_")
        return np.sqrt(np.diag(self.covariance_))


class GBMFrequency(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees with Poisson loss on the same cell keys (age as a number)."""

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 20, base_year: int = 2019,
                 random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.base_year = base_year
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> GBMFrequency:
        self.design_ = CohortDesign("linear", base_year=self.base_year).fit(X)
        Z = self.design_.transform(X)
        y, w = _check_xy(y, sample_weight, len(Z))
        # trend is monotone by assumption: trees cannot extrapolate a year they never saw,
        # so the constraint at least keeps next year at the last year's level, not below.
        cst = np.zeros(Z.shape[1], dtype=int)
        cst[-1] = 1
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            monotonic_cst=cst, random_state=self.random_state,
        ).fit(Z, y, sample_weight=w)
        self.n_features_in_ = Z.shape[1]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(self.design_.transform(X))
