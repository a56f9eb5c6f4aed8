"""Severity distributions that price any layer of annual cost in closed form.

The parametric model is the one actuaries use for catastrophic medical cost: a lognormal
body below a threshold u spliced with a Pareto tail above it, times a cohort scale s:
    X = s * X0,  P(X0 <= u) = 1 - pi,  X0 | X0 <= u ~ lognormal(mu, sigma) truncated at u,
    X0 | X0 > u ~ Pareto(u, alpha).
Layer prices come from limited expected values: layer(a, b) = E[min(X,b)] - E[min(X,a)].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

# the open range of each parameter that has one (mu is any finite number)
POSITIVE = {"sigma": (0, math.inf), "threshold": (0, math.inf), "tail_prob": (0, 1),
            "alpha": (0, math.inf), "scale": (0, math.inf)}


@dataclass(frozen=True)
class SplicedSeverity:
    """Lognormal body (below u) + Pareto tail (above u), scaled by `scale`. Costs in CNY."""

    mu: float
    sigma: float
    threshold: float
    tail_prob: float
    alpha: float
    scale: float = 1.0

    def to_dict(self) -> dict[str, float]:
        """The parameters as plain JSON data (the forecast folder's format)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> SplicedSeverity:
        """The inverse of `to_dict`, for data from outside: ValueError (naming the
        parameter) unless every parameter is a finite number in its range."""
        values = {f.name: float(data[f.name]) for f in fields(cls)}
        for name, value in values.items():
            low, high = POSITIVE.get(name, (-math.inf, math.inf))
            if not (math.isfinite(value) and low < value < high):
                raise ValueError(f"severity parameter {name} = {value!r}; expected a finite "
                                 f"number in ({low:g}, {high:g})")
        return cls(**values)

    def _body_top(self) -> float:
        return float(ndtr((math.log(self.threshold) - self.mu) / self.sigma))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(X <= x)."""
        x0 = np.asarray(x, dtype="float64") / self.scale
        safe = np.maximum(x0, 1e-300)
        body = (1 - self.tail_prob) * ndtr((np.log(safe) - self.mu) / self.sigma) / self._body_top()
        tail = 1 - self.tail_prob * (self.threshold / np.maximum(x0, self.threshold)) ** self.alpha
        return np.where(x0 <= 0, 0.0, np.where(x0 <= self.threshold, body, tail))

    def lev(self, b: np.ndarray) -> np.ndarray:
        """Limited expected value E[min(X, b)] in CNY, closed form."""
        b0 = np.asarray(b, dtype="float64") / self.scale
        mu, s, u, pi, a = self.mu, self.sigma, self.threshold, self.tail_prob, self.alpha
        w = (1 - pi) / self._body_top()
        mean_ln = math.exp(mu + s * s / 2)
        safe = np.maximum(np.minimum(b0, u), 1e-300)
        # E[X0 1{X0 <= min(b, u)}] over the body, plus b P(X0 > b) while b is in the body
        partial = w * mean_ln * ndtr((np.log(safe) - mu - s * s) / s)
        in_body = partial + np.minimum(b0, u) * (1 - self.cdf(np.minimum(b0, u) * self.scale))
        bt = np.maximum(b0, u)
        tail_lev = (u + u**a * (bt ** (1 - a) - u ** (1 - a)) / (1 - a)) if a != 1 else (
            u + u * np.log(bt / u))
        above = partial + pi * tail_lev
        out = np.where(b0 <= u, in_body, above)
        return self.scale * np.where(b0 <= 0, 0.0, out)

    def layer(self, a: float, b: float) -> float:
        """Expected cost per claimant inside [a, b) CNY: E[min(X,b)] - E[min(X,a)]."""
        return float(self.lev(b) - self.lev(a))

    def mean(self) -> float:
        """E[X] in CNY (infinite when alpha <= 1)."""
        return float(self.lev(np.inf)) if self.alpha > 1 else math.inf

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """The cost (CNY) with P(X <= cost) = q, for q in [0, 1)."""
        # the same arithmetic as min(body, threshold) where q <= 1 - tail_prob, else the
        # tail, worked in place and the tail only where it is taken: scenarios ask for
        # tens of millions of quantiles, and each full-size temporary cost more than the
        # arithmetic
        q = np.asarray(q, dtype="float64")
        x = np.divide(q, 1 - self.tail_prob, out=np.empty_like(q))
        np.minimum(x, 1.0, out=x)
        x *= self._body_top()
        np.clip(x, 1e-300, 1 - 1e-16, out=x)
        ndtri(x, out=x)
        x *= self.sigma
        x += self.mu
        np.exp(x, out=x)
        np.minimum(x, self.threshold, out=x)
        tail = q > 1 - self.tail_prob
        if tail.any():
            x[tail] = self.threshold * (np.maximum(1 - q[tail], 1e-300)
                                        / self.tail_prob) ** (-1 / self.alpha)
        x *= self.scale
        return x if x.ndim else x[()]  # a scalar asked, a NumPy float given (as before)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent costs (CNY)."""
        tail = rng.random(n) < self.tail_prob
        p = rng.random(n) * self._body_top()
        x = np.exp(self.mu + self.sigma * ndtri(np.maximum(p, 1e-300)))
        x[tail] = self.threshold * (1 - rng.random(int(tail.sum()))) ** (-1 / self.alpha)
        return self.scale * x

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """log density of X at x > 0."""
        x0 = np.asarray(x, dtype="float64") / self.scale
        z = (np.log(x0) - self.mu) / self.sigma
        body = (math.log(1 - self.tail_prob) - math.log(self._body_top())
                - np.log(x0 * self.sigma * math.sqrt(2 * math.pi)) - z * z / 2)
        tail = (math.log(self.tail_prob) + math.log(self.alpha)
                + self.alpha * math.log(self.threshold) - (self.alpha + 1) * np.log(x0))
        return np.where(x0 <= self.threshold, body, tail) - math.log(self.scale)


class GroupedCosts:
    """Log costs grouped (rows of a group share a scale and a truncation point), sorted
    within each group, with prefix sums: the spliced log-likelihood for any scales and
    parameters costs O(groups x log rows), not O(rows), per evaluation.

    log_costs: log of each cost; group: each row's group (0..K-1).
    """

    def __init__(self, log_costs: np.ndarray, group: np.ndarray):
        group = np.asarray(group, dtype="int64")
        order = np.lexsort((log_costs, group))
        self.logs, g = np.asarray(log_costs, dtype="float64")[order], group[order]
        k = np.arange(int(group.max()) + 1)
        self.start, self.end = np.searchsorted(g, k), np.searchsorted(g, k, side="right")
        self.n = self.end - self.start
        self.c1 = np.r_[0.0, np.cumsum(self.logs)]
        self.c2 = np.r_[0.0, np.cumsum(self.logs * self.logs)]
        self.low, self.width = float(self.logs.min()), float(np.ptp(self.logs)) + 2.0
        self.key = g * self.width + (self.logs - self.low)  # increasing across groups

    def _split(self, log_cut: np.ndarray) -> np.ndarray:
        """Per group, the first row whose log cost exceeds log_cut (the group's end when
        none does)."""
        inside = np.clip(log_cut - self.low, -0.5, self.width - 1.0)
        at = np.searchsorted(self.key, np.arange(len(self.n)) * self.width + inside,
                             side="right")
        return np.clip(at, self.start, self.end)

    def log_likelihood(self, dist: SplicedSeverity, log_scale: np.ndarray,
                       truncated_at: np.ndarray | float = 0.0) -> float:
        """Sum over rows of log f(cost) for cost = scale_g x X0, X0 ~ `dist` (scale 1),
        each density divided by P(cost > truncated_at_g) when truncated_at > 0."""
        mu, sd, u, pi, a = dist.mu, dist.sigma, dist.threshold, dist.tail_prob, dist.alpha
        split = self._split(math.log(u) + log_scale)
        nb, nt = split - self.start, self.end - split
        sum_b = self.c1[split] - self.c1[self.start] - nb * log_scale
        sq_b = (self.c2[split] - self.c2[self.start]
                - 2 * log_scale * (self.c1[split] - self.c1[self.start])
                + nb * log_scale**2)
        sum_t = self.c1[self.end] - self.c1[split] - nt * log_scale
        top = float(ndtr((math.log(u) - mu) / sd))
        body = (nb * (math.log1p(-pi) - math.log(max(top, 1e-300)) - math.log(sd)
                      - 0.5 * math.log(2 * math.pi))
                - sum_b - (sq_b - 2 * mu * sum_b + nb * mu * mu) / (2 * sd * sd))
        tail = nt * (math.log(pi) + math.log(a) + a * math.log(u)) - (a + 1) * sum_t
        total = float(body.sum() + tail.sum() - (self.n * log_scale).sum())
        cut = np.broadcast_to(np.asarray(truncated_at, dtype="float64"), self.n.shape)
        if cut.any():
            survival = 1 - dist.cdf(cut * np.exp(-log_scale))
            total -= float(self.n @ np.log(np.maximum(survival, 1e-300)))
        return total


MIN_TAIL = 30  # claimants (weighted) on each side of a candidate splice point
SPLICE_QUANTILES = (0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.965, 0.975, 0.985, 0.99)


def _body_fit(logs: np.ndarray, w: np.ndarray, threshold: float) -> tuple[float, float]:
    """(mu, sigma) of a lognormal truncated above at `threshold` by maximum likelihood,
    from the weighted sufficient statistics of the log costs below it (O(1) per step)."""
    from scipy.optimize import minimize  # when fitting: `ciplan --help` starts without it

    n = w.sum()
    if n <= 0:
        return math.log(threshold) - 1.0, 1.0
    s1, s2 = w @ logs, w @ (logs * logs)
    top = math.log(threshold)
    mean = s1 / n
    sd = math.sqrt(max(s2 / n - mean * mean, 1e-6))

    def nll(theta: np.ndarray) -> float:
        mu, log_sd = theta
        sd_ = math.exp(log_sd)
        quad = (s2 - 2 * mu * s1 + n * mu * mu) / (2 * sd_ * sd_)
        cut = max(float(ndtr((top - mu) / sd_)), 1e-300)
        return (n * log_sd + quad + n * math.log(cut)) / n

    res = minimize(nll, np.array([mean, math.log(sd)]), method="L-BFGS-B")
    return float(res.x[0]), float(math.exp(res.x[1]))


def _fit_untruncated(x: np.ndarray, w: np.ndarray, threshold: float) -> SplicedSeverity:
    """The spliced model's likelihood separates when nothing is truncated: the tail share
    and the Pareto index in closed form, the body from sufficient statistics."""
    tail = x > threshold
    n_tail, n = w[tail].sum(), w.sum()
    pi = min(max(n_tail / n, 1e-9), 1 - 1e-9)
    spread = w[tail] @ np.log(x[tail] / threshold)
    alpha = n_tail / spread if n_tail > 0 and spread > 0 else 2.0
    mu, sigma = _body_fit(np.log(x[~tail]), w[~tail], threshold)
    return SplicedSeverity(mu, sigma, threshold, float(pi), float(alpha))


def _fit_truncated(x: np.ndarray, threshold: float, trunc: np.ndarray) -> SplicedSeverity:
    """Maximum likelihood with each density divided by P(X > truncation point); the
    costs are grouped by truncation point (one per cohort scale), so that each evaluation
    costs O(groups)."""
    from scipy.optimize import minimize

    points, where = np.unique(trunc, return_inverse=True)
    grouped = GroupedCosts(np.log(x), where.ravel())
    zero = np.zeros(len(points))
    start_dist = _fit_untruncated(x, np.ones_like(x), threshold)
    start = np.array([start_dist.mu, math.log(start_dist.sigma),
                      logit(min(max(start_dist.tail_prob, 1e-4), 0.5)),
                      math.log(start_dist.alpha)])

    def build(theta: np.ndarray) -> SplicedSeverity:
        return SplicedSeverity(theta[0], math.exp(theta[1]), threshold, float(expit(theta[2])),
                               math.exp(theta[3]))

    def nll(theta: np.ndarray) -> float:
        return -grouped.log_likelihood(build(theta), zero, points) / len(x)

    res = minimize(nll, start, method="Nelder-Mead",
                   options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 20_000})
    return build(res.x)


def fit_spliced(costs: np.ndarray, threshold: float, truncated_at: float | np.ndarray = 0.0,
                weights: np.ndarray | None = None) -> SplicedSeverity:
    """Maximum likelihood fit of the spliced model with u = `threshold` fixed (money units).

    When costs are only reported above `truncated_at` (left truncation; a number or one per
    cost), each density is divided by P(X > truncated_at): what was not seen is modelled,
    never counted as zero.
    """
    x = np.asarray(costs, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    trunc = np.broadcast_to(np.asarray(truncated_at, dtype="float64"), x.shape)
    if (x < trunc).any():
        raise ValueError("every cost must reach truncated_at")
    if not trunc.any():
        return _fit_untruncated(x, w, threshold)
    if weights is not None:
        raise ValueError("weights are not supported with truncation")
    return _fit_truncated(x, threshold, trunc)


def log_likelihood(dist: SplicedSeverity, x: np.ndarray, w: np.ndarray,
                   trunc: np.ndarray) -> float:
    """Weighted log-likelihood of costs x under `dist`, truncated at `trunc` (0: none)."""
    ll = float(w @ dist.logpdf(x))
    if trunc.any():
        points, where = np.unique(trunc, return_inverse=True)
        at = np.bincount(where.ravel(), weights=w, minlength=len(points))
        ll -= float(at @ np.log(np.maximum(1 - dist.cdf(points), 1e-300)))
    return ll


def splice_candidates(x: np.ndarray, w: np.ndarray,
                      quantiles: tuple[float, ...] = SPLICE_QUANTILES) -> list[float]:
    """Candidate splice points: quantiles of the costs leaving at least MIN_TAIL claimants
    (weighted) on each side; the median when the data are too few for any."""
    from forecasting.models.features import weighted_quantiles

    found = []
    for u in weighted_quantiles(x, w, np.asarray(quantiles)):
        above = w[x > u].sum()
        if above >= MIN_TAIL and w.sum() - above >= MIN_TAIL and u not in found:
            found.append(float(u))
    return found or [float(weighted_quantiles(x, w, np.array([0.5]))[0])]


def choose_splice(costs: np.ndarray, truncated_at: float | np.ndarray = 0.0,
                  weights: np.ndarray | None = None,
                  quantiles: tuple[float, ...] = SPLICE_QUANTILES
                  ) -> tuple[SplicedSeverity, list[dict]]:
    """The splice point by profile likelihood: the spliced model fitted at each candidate
    (splice_candidates), the one with the highest likelihood kept. Returns it and the
    profile (one dict per candidate: threshold, share above it, log-likelihood)."""
    x = np.asarray(costs, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    trunc = np.broadcast_to(np.asarray(truncated_at, dtype="float64"), x.shape)
    profile, best = [], None
    for u in splice_candidates(x, w, quantiles):
        dist = fit_spliced(x, u, trunc, None if weights is None else w)
        ll = log_likelihood(dist, x, w, trunc)
        profile.append({"threshold": u, "share_above": float(w[x > u].sum() / w.sum()),
                        "log_likelihood": ll})
        if best is None or ll > best[0]:
            best = (ll, dist)
    return best[1], profile
