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

import functools
import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_ndtr, logit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import GammaRegressor
from sklearn.utils.validation import check_is_fitted

from forecasting.models.features import CohortDesign, distinct_rows
from forecasting.models.spliced import (
    GroupedCosts,
    SplicedSeverity,
    choose_splice,
    fit_spliced,
)
from forecasting.models.threads import single_threaded
from forecasting.models.warnings import ModelWarning

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
MIN_REPORTED_SHARE = 0.05  # below this share of claimants above T, the forecast says so
POWELL_ROUNDS = 4  # restarts of the truncated joint fit
MIN_TAIL_INDEX = 1.05  # Pareto index a fit is raised to: E[X] = u a / (a - 1) must exist
MAX_SHARE_RSE = 0.2  # relative standard error of P(X > T) beyond which the fit warns


def _costs(y) -> np.ndarray:
    y = np.asarray(y, dtype="float64")
    if (y <= 0).any() or not np.isfinite(y).all():
        raise ValueError("claimant costs must be finite and > 0")
    return y


def truncated_log_regression(Z: np.ndarray, logy: np.ndarray, log_t: float,
                             alpha: float) -> np.ndarray:
    """Coefficients b of log y = m + Z b + sigma e, e standard normal, fitted by maximum
    likelihood on data seen only where log y >= log_t (each density divided by
    P(log y >= log_t)); ridge `alpha` on b. The likelihood is smooth (unlike the spliced
    one, whose density jumps at the splice point), so a gradient method converges."""
    p = Z.shape[1]

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, m, log_sd = theta[:p], theta[p], theta[p + 1]
        sd = np.exp(log_sd)
        eta = m + Z @ b
        z = (logy - eta) / sd
        c = (log_t - eta) / sd
        log_surv = log_ndtr(-c)
        ratio = np.exp(-0.5 * c * c - HALF_LOG_2PI - log_surv)  # normal hazard at c
        n = len(logy)
        value = (log_sd * n + 0.5 * z @ z + log_surv.sum()) / n + 0.5 * alpha * b @ b
        d_eta = (-z / sd + ratio / sd) / n
        grad = np.r_[Z.T @ d_eta + alpha * b, d_eta.sum(),
                     (n - z @ z + ratio @ c) / n]
        return float(value), grad

    start = np.r_[np.zeros(p), logy.mean(), np.log(logy.std() + 1e-6)]
    res = minimize(nll, start, jac=True, method="L-BFGS-B")
    return res.x[:p]


def _gradient(fn, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central differences of fn at x."""
    eye = np.eye(len(x)) * step
    return np.array([(fn(x + e) - fn(x - e)) / (2 * step) for e in eye])


def _hessian(fn, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central second differences of fn at x (symmetrised)."""
    eye = np.eye(len(x)) * step
    hess = np.array([(_gradient(fn, x + e) - _gradient(fn, x - e)) / (2 * step) for e in eye])
    return (hess + hess.T) / 2


def _powell(fn, start: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimise fn by Powell's method, restarted (fresh search directions) until a round
    gains nothing: the spliced density jumps at the splice point, so the likelihood is not
    smooth in the cohort scale and gradient methods stall on it."""
    value = fn(start)
    for _ in range(POWELL_ROUNDS):
        res = minimize(fn, start, method="Powell",
                       options={"xtol": 1e-6, "ftol": 1e-10, "maxfev": 200 * len(start)})
        gained, start, value = value - res.fun, res.x, float(res.fun)
        if gained < 1e-7:
            break
    return start, value


def _gamma(Z: np.ndarray, y: np.ndarray, alpha: float, weight=None) -> GammaRegressor:
    return GammaRegressor(alpha=alpha, max_iter=1000, tol=1e-10,
                          solver="newton-cholesky").fit(Z, y, sample_weight=weight)


def _gamma_grouped(Zg: np.ndarray, codes: np.ndarray, y: np.ndarray,
                   alpha: float) -> GammaRegressor:
    """The Gamma GLM of costs y (CNY) whose design rows are Zg[codes], fitted on the
    sufficient statistics: each distinct row's mean cost weighted by its claimants. Within a
    row the Gamma deviance of the costs is n (log mu + mean / mu) plus terms free of mu, the
    deviance of the mean weighted by n, and the weights sum to the claimants: the same
    objective as over every claimant, on a few thousand rows instead of 400 k."""
    counts = np.bincount(codes, minlength=len(Zg)).astype("float64")
    sums = np.bincount(codes, weights=y, minlength=len(Zg))
    seen = counts > 0
    return _gamma(Zg[seen], sums[seen] / counts[seen], alpha, counts[seen])


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
        codes, first = distinct_rows(X, ("year", "age", "age_band", *self.design_.keys_))
        Zg = self.design_.transform(X.iloc[first])  # once per distinct cohort and year
        Z = Zg[codes]
        # Stage 1: the cohort scale from a Gamma GLM of the mean when nothing is truncated;
        # under truncation from a lognormal regression truncated at the threshold (the
        # mean of what is seen above a threshold says little about the scale).
        coef = (_gamma_grouped(Zg, codes, y, self.alpha).coef_ if self.reported_above <= 0 else
                truncated_log_regression(Z, np.log(y), np.log(self.reported_above),
                                         self.alpha))
        x0 = y / np.exp(Z @ coef)
        trunc = self.reported_above / np.exp(Z @ coef)
        base = self._splice(x0, trunc if self.reported_above > 0 else np.zeros_like(x0))
        self.joint_rows_ = len(y)
        if self.reported_above > 0:
            coef, base = self._joint(Z, y, self._starts(Z, y, coef, base))
        self.coef_, self.base_ = coef, self._tail_with_a_mean(base)
        cohort = Z[:, :-1] @ coef[:-1]
        self.eta_range_ = (float(cohort.min()), float(cohort.max()))
        self.n_features_in_ = Z.shape[1]
        self._say_what_truncation_means(Z, y)
        return self

    @staticmethod
    def _tail_with_a_mean(base: SplicedSeverity) -> SplicedSeverity:
        """`base` with its Pareto index raised to MIN_TAIL_INDEX when below it: an index
        of 1 or less has no finite mean (no price, no backtest), what the upper half of a
        few wide-spread costs spliced at their median can give. Said aloud."""
        if base.alpha >= MIN_TAIL_INDEX:
            return base
        warnings.warn(ModelWarning(
            f"the severity's Pareto tail (the top {base.tail_prob:.0%} of costs) came out "
            f"with index {base.alpha:.2f}: no finite mean cost; it is priced with index "
            f"{MIN_TAIL_INDEX}, which makes its mean large: too few claimants to tell the "
            f"tail (fix the splice with [models] splice_quantile, or add years)"),
            stacklevel=4)
        return replace(base, alpha=MIN_TAIL_INDEX)

    def _splice(self, x0: np.ndarray, trunc: np.ndarray) -> SplicedSeverity:
        if self.tail_quantile is not None:
            u = float(np.quantile(x0, self.tail_quantile))
            self.splice_profile_ = [{"threshold": u, "share_above": float((x0 > u).mean()),
                                     "log_likelihood": float("nan")}]
            return fit_spliced(x0, u, trunc)
        base, self.splice_profile_ = choose_splice(x0, trunc)
        return base

    def _starts(self, Z, y, coef, base) -> list[tuple[np.ndarray, SplicedSeverity]]:
        """Where the truncated joint fit starts: stage 1's scale and distribution, and no
        cohort effect at all with the distribution of the pooled costs (under heavy
        truncation stage 1's scale can be far off; the likelihood decides)."""
        pooled, _ = choose_splice(y, np.full(len(y), self.reported_above))
        return [(coef, base), (np.zeros_like(coef), pooled)]

    def _joint(self, Z, y, starts):
        """Stage 2 under truncation: scale and distribution together by maximum likelihood,
        on every claimant (or the subsample max_joint_rows asks for, said aloud), from each
        start; the best likelihood wins."""
        if self.max_joint_rows is not None and len(y) > self.max_joint_rows:
            rows = np.random.default_rng(self.random_state).permutation(len(y))[
                : self.max_joint_rows]
            Z, y = Z[rows], y[rows]
            self.joint_rows_ = len(rows)
            warnings.warn(ModelWarning(
                f"the truncated severity fit used a random {len(rows):,} of the claimants "
                f"(max_joint_rows)"), stacklevel=4)
        unique, inverse = np.unique(Z, axis=0, return_inverse=True)
        grouped = GroupedCosts(np.log(y), inverse.ravel())
        p = Z.shape[1]

        def unpack(theta, threshold):
            dist = SplicedSeverity(theta[p], float(np.exp(theta[p + 1])), threshold,
                                   float(expit(theta[p + 2])), float(np.exp(theta[p + 3])))
            return theta[:p], dist

        def nll(theta, threshold):
            b, dist = unpack(theta, threshold)
            ll = grouped.log_likelihood(dist, unique @ b, self.reported_above)
            return -ll / len(y) + 0.5 * self.alpha * (b @ b)

        best = None
        for coef, base in starts:  # each keeps its own splice point
            start = np.r_[coef, base.mu, np.log(base.sigma), logit(base.tail_prob),
                          np.log(base.alpha)]
            theta, value = _powell(functools.partial(nll, threshold=base.threshold), start)
            if best is None or value < best[1]:
                best = (theta, value, base.threshold)
        return unpack(best[0], best[2])

    def _say_what_truncation_means(self, Z: np.ndarray, y: np.ndarray) -> None:
        """Under truncation: the share of claimants above the threshold (the forecast
        divides counts by it) and whether the body below it is seen at all."""
        if self.reported_above <= 0:
            self.reported_share_, self.reported_share_se_ = 1.0, 0.0
            return
        scales = np.exp(Z @ self.coef_)
        share = float(np.mean(1 - self.base_.cdf(self.reported_above / scales)))
        self.reported_share_ = share
        if share < MIN_REPORTED_SHARE:
            warnings.warn(ModelWarning(
                f"only {share:.1%} of claimants lie above the reporting threshold "
                f"{self.reported_above:g}: claimant counts are multiplied by about "
                f"{1 / max(share, 1e-300):.3g} and the costs below the threshold are "
                f"extrapolated from "
                "those above it; price per reported claim where you can"), stacklevel=4)
        self.reported_share_se_ = self._share_se(Z, y)
        if self.reported_share_se_ > MAX_SHARE_RSE * share:
            warnings.warn(ModelWarning(
                f"the costs below the reporting threshold {self.reported_above:g} are weakly "
                f"identified by the data: the share of claimants above it is {share:.1%} +- "
                f"{self.reported_share_se_:.1%} (one standard error; inf: no optimum in "
                "the distribution's parameters), and the claimant "
                "count and the layers below the threshold are as uncertain; price per "
                "reported claim where you can"), stacklevel=4)
        if np.median(self.base_.threshold * scales) <= self.reported_above:
            warnings.warn(ModelWarning(
                f"the reporting threshold {self.reported_above:g} lies above the splice "
                "point of the fitted distribution for most cohorts: the body below the "
                "threshold is not identified by the data (its lognormal shape is assumed)"),
                stacklevel=4)

    def _share_se(self, Z: np.ndarray, y: np.ndarray) -> float:
        """Standard error of the mean share of claimants above the threshold, from the
        observed information of the distribution's four parameters (the cohort scale
        held at its estimate) and the delta method."""
        unique, inverse = np.unique(Z, axis=0, return_inverse=True)
        log_s = unique @ self.coef_
        counts = np.bincount(inverse.ravel(), minlength=len(unique))
        b = self.base_
        theta = np.array([b.mu, math.log(b.sigma), logit(b.tail_prob), math.log(b.alpha)])

        def build(t: np.ndarray) -> SplicedSeverity:
            return SplicedSeverity(t[0], math.exp(t[1]), b.threshold, float(expit(t[2])),
                                   math.exp(t[3]))

        def share(t: np.ndarray) -> float:
            return float(counts @ (1 - build(t).cdf(self.reported_above * np.exp(-log_s)))
                         / counts.sum())

        grouped = GroupedCosts(np.log(y), inverse.ravel())
        hess = _hessian(lambda t: -grouped.log_likelihood(build(t), log_s, self.reported_above),
                        theta)
        if np.linalg.eigvalsh(hess).min() <= 0:  # not even a local optimum in these four
            return math.inf
        grad = _gradient(share, theta)
        return float(np.sqrt(grad @ np.linalg.solve(hess, grad)))

    def log_scale(self, X: pd.DataFrame) -> np.ndarray:
        """log of each row's scale: the cohort part clamped to eta_range_, plus the trend."""
        check_is_fitted(self, "base_")
        codes, first = distinct_rows(X, ("year", "age", "age_band", *self.design_.keys_))
        Z = self.design_.transform(X.iloc[first])  # once per distinct cohort and year
        cohort = np.clip(Z[:, :-1] @ self.coef_[:-1], *self.eta_range_)
        return (cohort + Z[:, -1] * self.coef_[-1])[codes]

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


def _sorted_sums(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The costs sorted and their running sums from 0 (CNY)."""
    x = np.sort(costs)
    return x, np.concatenate([[0.0], np.cumsum(x)])


def _sorted_lev(x: np.ndarray, cum: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of min(cost, b_j) over sorted costs x with running sums cum, for each b_j
    (O(m log n) given the sums; CNY)."""
    pos = np.searchsorted(x, b)  # costs below each b
    return (cum[pos] + np.where(np.isfinite(b), b, 0.0) * (len(x) - pos)) / len(x)


def lev_matrix(severities, b) -> np.ndarray:
    """E[min(X_i, b_j)] of every severity i (a BlendedSeverity) at every level b_j, shape
    (len(severities), len(b)), CNY. The parametric parts of one shape (cohorts of a fit
    differ by scale only) in one array call, s_i lev_1(b / s_i); the past costs' part
    cohort by cohort. The same values as each severity's `lev`, without a call per cohort:
    a backtest prices every cohort under every plan."""
    b = np.atleast_1d(np.asarray(b, dtype="float64"))
    out = np.empty((len(severities), b.size))
    shapes: dict[SplicedSeverity, list[int]] = {}  # the distribution at scale 1 -> rows
    for i, sev in enumerate(severities):
        shapes.setdefault(replace(sev.parametric, scale=1.0), []).append(i)
    for unit, rows in shapes.items():
        scale = np.array([severities[i].parametric.scale for i in rows])[:, None]
        out[rows] = scale * unit.lev(b[None, :] / scale)
    for i, sev in enumerate(severities):
        if sev.credibility > 0 and sev.costs.size:
            out[i] = (sev.credibility * _sorted_lev(*sev._sorted, b)
                      + (1 - sev.credibility) * out[i])
    return out


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

    @functools.cached_property
    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """The past costs sorted, with running sums: sorted once per severity, not once per
        price asked of it (a plan search prices every cohort thousands of times)."""
        return _sorted_sums(self.costs)

    def lev(self, b) -> np.ndarray:
        """E[min(X, b)] in CNY."""
        param = self.parametric.lev(b)
        if self.credibility == 0 or self.costs.size == 0:
            return param
        b_arr = np.atleast_1d(np.asarray(b, dtype="float64"))
        emp = _sorted_lev(*self._sorted, b_arr)
        out = self.credibility * emp + (1 - self.credibility) * np.atleast_1d(param)
        return out if np.ndim(b) else float(out[0])

    def cdf(self, x) -> np.ndarray:
        """P(X <= x): the same credibility blend of the past costs' and the fit's."""
        param = np.asarray(self.parametric.cdf(x), dtype="float64")
        if self.credibility == 0 or self.costs.size == 0:
            return param
        emp = np.searchsorted(self._sorted[0], np.asarray(x, dtype="float64"),
                              side="right") / self.costs.size
        return self.credibility * emp + (1 - self.credibility) * param

    def layer(self, a: float, b: float) -> float:
        """Expected cost per claimant inside [a, b) CNY."""
        return float(np.asarray(self.lev(b)) - np.asarray(self.lev(a)))

    def mean(self) -> float:
        return self.layer(0.0, np.inf)
