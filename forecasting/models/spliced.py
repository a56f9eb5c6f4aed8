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
from scipy.optimize import minimize
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
        q = np.asarray(q, dtype="float64")
        body_q = np.minimum(q / (1 - self.tail_prob), 1.0) * self._body_top()
        body = np.exp(self.mu + self.sigma * ndtri(np.clip(body_q, 1e-300, 1 - 1e-16)))
        tail = self.threshold * (np.maximum(1 - q, 1e-300) / self.tail_prob) ** (-1 / self.alpha)
        return self.scale * np.where(q <= 1 - self.tail_prob, np.minimum(body, self.threshold),
                                     tail)

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


def fit_spliced(costs: np.ndarray, threshold: float, truncated_at: float | np.ndarray = 0.0,
                weights: np.ndarray | None = None) -> SplicedSeverity:
    """Maximum likelihood fit of the spliced model with u = `threshold` fixed (CNY).

    When costs are only reported above `truncated_at` (left truncation; a number or one per
    cost), each density is divided by P(X > truncated_at): what was not seen is modelled,
    never counted as zero.
    """
    x = np.asarray(costs, dtype="float64")
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype="float64")
    trunc = np.broadcast_to(np.asarray(truncated_at, dtype="float64"), x.shape)
    if (x <= trunc).any():
        raise ValueError("every cost must exceed truncated_at")
    logs = np.log(x[x <= threshold])
    start = np.array([np.mean(logs) if logs.size else math.log(threshold) - 1,
                      math.log(np.std(logs) if logs.size > 1 else 1.0),
                      logit(min(max((x > threshold).mean(), 1e-4), 0.5)), math.log(2.0)])

    def build(theta: np.ndarray) -> SplicedSeverity:
        return SplicedSeverity(theta[0], math.exp(theta[1]), threshold, float(expit(theta[2])),
                               math.exp(theta[3]))

    def nll(theta: np.ndarray) -> float:
        dist = build(theta)
        ll = w @ dist.logpdf(x)
        if trunc.any():
            ll -= w @ np.log(np.maximum(1 - dist.cdf(trunc), 1e-300))
        return -ll / w.sum()

    res = minimize(nll, start, method="Nelder-Mead",
                   options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 20_000, "maxfev": 20_000})
    return build(res.x)
