"""Claim frequency per member-year by cohort, fitted on cells with exposure as weight.

Both models follow the scikit-learn contract: X is a frame of cell keys, y the observed
frequency (claimants, or claims, per member-year), sample_weight the exposure
(member-years). Because the Poisson likelihood depends on member rows only through cell
sums, fitting on cells is exact, not an approximation; fitting on cells at single years of
age (`Cells.by_age`) is exact for any model of age, keys and year.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import xlogy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from forecasting.models.features import CohortDesign
from forecasting.models.threads import single_threaded
from forecasting.models.warnings import ModelWarning

KNOT_GRID = (3, 4, 5, 6, 8, 10)        # spline knots tried by cross-validation
BAND_MULTIPLES = (1, 2, 3, 4)          # one-hot age bands: multiples of the cells' width


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


def _objective(Z1: np.ndarray, beta: np.ndarray, y: np.ndarray, w: np.ndarray,
               alpha: float) -> float:
    """Half the weighted mean Poisson deviance (up to a constant) plus the ridge penalty:
    scikit-learn's PoissonRegressor objective."""
    eta = Z1 @ beta
    return float(w @ (np.exp(eta) - y * eta) / w.sum() + 0.5 * alpha * beta[1:] @ beta[1:])


def poisson_fit(Z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float,
                tol: float = 1e-10, max_iter: int = 100) -> tuple[float, np.ndarray]:
    """(intercept, coef) of the Poisson GLM with log link, rate y and weights w (exposure),
    by Newton's method with step halving: the same estimate as scikit-learn's
    PoissonRegressor(alpha) (tested against statsmodels), without its per-call overhead on
    a few hundred cells."""
    Z1 = np.hstack([np.ones((len(Z), 1)), Z])
    beta = np.zeros(Z1.shape[1])
    beta[0] = np.log(max(w @ y / w.sum(), 1e-300))
    ridge = np.full(Z1.shape[1], alpha)
    ridge[0] = 0.0
    obj = _objective(Z1, beta, y, w, alpha)
    for _ in range(max_iter):
        mu = np.exp(Z1 @ beta)
        grad = Z1.T @ (w * (mu - y)) / w.sum() + ridge * beta
        hess = (Z1.T * (w * mu / w.sum())) @ Z1 + np.diag(ridge)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t = 1.0
        while t > 1e-8:
            new = _objective(Z1, beta - t * step, y, w, alpha)
            if new <= obj + 1e-15:
                break
            t /= 2
        beta, gain, obj = beta - t * step, obj - new, new
        if np.max(np.abs(t * step)) < tol or gain < tol * 1e-3:
            break
    return float(beta[0]), beta[1:]


class _Fitted:
    """A fitted Poisson GLM's coefficients, predicting like a scikit-learn regressor."""

    def __init__(self, intercept: float, coef: np.ndarray):
        self.intercept_, self.coef_ = intercept, coef

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return np.exp(self.intercept_ + Z @ self.coef_)


def poisson_deviance(y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
    """The weighted sum of the Poisson unit deviances 2 (y log(y/mu) - y + mu): what
    `mean_poisson_deviance` times the total weight gives, without its checks (the cross-
    validation asks for it hundreds of times on arrays it made itself)."""
    return float(np.sum(w * 2 * (xlogy(y, y / mu) - y + mu)))


def _poisson(Z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> _Fitted:
    return _Fitted(*poisson_fit(Z, y, w, alpha))


class PoissonFrequencyGLM(RegressorMixin, BaseEstimator):
    """Poisson GLM with log link: age, one-hot cohort keys, age x key interactions, trend.

    age: "spline", "bands" (one-hot age bands: the actuary's baseline) or "linear".
    n_knots (spline) and age_band_width (bands, years): None = chosen by `cv_folds`-fold
    cross-validation of the Poisson deviance over cells (KNOT_GRID; multiples of
    `band_width`). interactions: keys whose levels get their own age curve (e.g. ("sex",):
    women aged 25-39 may claim three times as often as men, unlike at other ages).
    keys: the cohort keys (None: every column the contract does not reserve).
    band_width: of the cells' age bands (1 for cells at single ages).
    Fitted attributes: coef_, intercept_, covariance_ (inverse Fisher information of
    [intercept, coef]), feature_names_, n_knots_ / age_band_width_, cv_scores_.
    predict gives the expected count per member-year.
    """

    def __init__(self, *, age: str = "spline", n_knots: int | None = None,
                 age_band_width: int | None = None, interactions: tuple[str, ...] = (),
                 keys: tuple[str, ...] | None = None, band_width: int = 5,
                 base_year: int = 2019, alpha: float = 1e-8, cv_folds: int = 5,
                 random_state: int = 0):
        self.age = age
        self.n_knots = n_knots
        self.age_band_width = age_band_width
        self.interactions = interactions
        self.keys = keys
        self.band_width = band_width
        self.base_year = base_year
        self.alpha = alpha
        self.cv_folds = cv_folds
        self.random_state = random_state

    def _design(self, setting: int | None) -> CohortDesign:
        """The design with one setting of the cross-validated quantity."""
        return CohortDesign(self.age, setting or 6, self.base_year, self.band_width,
                            self.keys, self.interactions,
                            setting if self.age == "bands" else None)

    def _grid(self, X: pd.DataFrame) -> list[int]:
        """Settings cross-validation tries (a given one, or the grid the data support)."""
        given = self.n_knots if self.age == "spline" else self.age_band_width
        if self.age == "linear":
            return [0]
        if given is not None:
            return [int(given)]
        if self.age == "spline":
            n_ages = len(np.unique(X["age"] if "age" in X else X["age_band"]))
            return [k for k in KNOT_GRID if k <= max(n_ages, 3)]
        return [m * self.band_width for m in BAND_MULTIPLES]

    def _cv(self, X: pd.DataFrame, y: np.ndarray, w: np.ndarray, grid: list[int]) -> int:
        """The setting with the least mean held-out Poisson deviance over K folds of cells."""
        if len(grid) == 1 or len(X) < 4 * self.cv_folds:
            self.cv_scores_ = {}
            return grid[0] if len(grid) == 1 else self._default(grid)
        folds = list(KFold(self.cv_folds, shuffle=True,
                           random_state=self.random_state).split(X))
        scores = {}
        for setting in grid:
            dev = []
            for train, test in folds:
                design = self._design(setting).fit(X.iloc[train], w[train])
                Z = design.transform(X)  # row by row: one pass serves both sides of the fold
                glm = _poisson(Z[train], y[train], w[train], self.alpha)
                dev.append(poisson_deviance(y[test], glm.predict(Z[test]), w[test]))
            scores[setting] = float(np.sum(dev) / w.sum())
        self.cv_scores_ = scores
        return min(scores, key=scores.get)

    def _default(self, grid: list[int]) -> int:
        return 6 if self.age == "spline" and 6 in grid else grid[0]

    @single_threaded
    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> PoissonFrequencyGLM:
        y, w = _check_xy(y, sample_weight, len(X))
        setting = self._cv(X, y, w, self._grid(X))
        self.n_knots_ = setting if self.age == "spline" else None
        self.age_band_width_ = setting if self.age == "bands" else None
        self.design_ = self._design(setting).fit(X, w)
        Z = self.design_.transform(X)
        glm = _poisson(Z, y, w, self.alpha)
        self.coef_, self.intercept_ = glm.coef_, float(glm.intercept_)
        self.feature_names_ = self.design_.names()
        self.n_features_in_ = Z.shape[1]
        mu = glm.predict(Z)
        Z1 = np.hstack([np.ones((len(Z), 1)), Z])
        fisher = Z1.T @ (Z1 * (w * mu)[:, None])
        self.covariance_ = np.linalg.pinv(fisher)
        return self

    def linear_predictor(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return self.intercept_ + self.design_.transform(X) @ self.coef_

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected count per member-year for each row of X."""
        return np.exp(self.linear_predictor(X))

    def design_rows(self, X: pd.DataFrame) -> np.ndarray:
        """[1, design] rows of X, for drawing predictions from the coefficients' law."""
        check_is_fitted(self, "coef_")
        Z = self.design_.transform(X)
        return np.hstack([np.ones((len(Z), 1)), Z])

    def standard_errors(self) -> np.ndarray:
        """Standard errors of [intercept, coef] from the Fisher information."""
        check_is_fitted(self, "covariance_")
        return np.sqrt(np.diag(self.covariance_))


def gbm_settings(n_rows: int) -> tuple[int, int]:
    """(min_samples_leaf, max_leaf_nodes) scaled to the number of cells: a table of 30
    cells gets leaves of 2 and at most 3 of them, the L city's ~300 cells leaves of 12."""
    return max(2, n_rows // 25), min(15, max(2, n_rows // 10))


class GBMFrequency(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees with Poisson loss on the same cell keys (age as a number).

    min_samples_leaf and max_leaf_nodes: None = scaled to the number of cells
    (gbm_settings). A fit whose predictions do not vary is a constant rate: it warns
    (ModelWarning) and sets constant_ = True, never silently.
    """

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.05,
                 max_leaf_nodes: int | None = None, min_samples_leaf: int | None = None,
                 keys: tuple[str, ...] | None = None, band_width: int = 5,
                 base_year: int = 2019, random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.keys = keys
        self.band_width = band_width
        self.base_year = base_year
        self.random_state = random_state

    @single_threaded
    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> GBMFrequency:
        y, w = _check_xy(y, sample_weight, len(X))
        self.design_ = CohortDesign("linear", base_year=self.base_year,
                                    band_width=self.band_width, keys=self.keys).fit(X, w)
        Z = self.design_.transform(X)
        leaf, leaves = gbm_settings(len(Z))
        self._fit_trees(Z, y, w, leaf, leaves)
        fitted = self.model_.predict(Z)
        self.n_features_in_ = Z.shape[1]
        self.constant_ = bool(np.ptp(np.log(fitted)) < 1e-9)
        if self.constant_:
            warnings.warn(ModelWarning(
                f"the gradient-boosted frequency is a constant rate on these {len(Z)} cells "
                f"(min_samples_leaf={self.min_samples_leaf_}); it cannot rank cohorts"),
                stacklevel=3)
        return self

    def _fit_trees(self, Z: np.ndarray, y: np.ndarray, w: np.ndarray, leaf: int,
                   leaves: int) -> None:
        self.min_samples_leaf_ = self.min_samples_leaf or leaf
        self.max_leaf_nodes_ = self.max_leaf_nodes or leaves
        # trend is monotone by assumption: trees cannot extrapolate a year they never saw,
        # so the constraint at least keeps next year at the last year's level, not below.
        cst = np.zeros(Z.shape[1], dtype=int)
        cst[-1] = 1
        self.model_ = HistGradientBoostingRegressor(
            loss="poisson", max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes_, min_samples_leaf=self.min_samples_leaf_,
            monotonic_cst=cst, random_state=self.random_state,
        ).fit(Z, y, sample_weight=w)

    @single_threaded
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(self.design_.transform(X))
