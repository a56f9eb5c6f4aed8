"""The design of a cohort model: age, one-hot cohort keys, age x key interactions and a
calendar-year trend.

Models take a frame of cell keys (year, age_band, the cohort keys) and turn it into
numbers here, so frequency and severity GLMs share one parameterisation. Everything the
design needs is learnt from the training cells: the age range and the spline knots (at
quantiles of the training ages, weighted by exposure or claimants), the levels of each key
(the first is the reference), the one-hot age bands. Nothing is fixed over ages 0-100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import SplineTransformer

from forecasting.data.cohorts import FIXED_LEVELS, RESERVED

AGE_KINDS = ("spline", "bands", "linear")


def age_midpoint(age_band: np.ndarray, band_width: int = 5) -> np.ndarray:
    """Middle age of each band (years); the open last band counts as band_width wide."""
    return np.asarray(age_band, dtype="float64") + (band_width - 1) / 2


def ages_of(cells: pd.DataFrame, band_width: int) -> np.ndarray:
    """The age of each row (years): its `age` column when it has one (single ages, member
    rows, claimants), else the middle of its band."""
    if "age" in cells:
        return cells["age"].to_numpy(dtype="float64")
    return age_midpoint(cells["age_band"].to_numpy(), band_width)


def key_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """The cohort keys of a cell table: every column the data contract does not reserve
    and that is not a float (keys are categories: text, whole numbers, booleans)."""
    found = [c for c in frame.columns if c not in RESERVED and c != "special_group"
             and not pd.api.types.is_float_dtype(frame[c])]
    return (*found, *(["special_group"] if "special_group" in frame else []))


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles q of `values` with `weights` (the inverse of the weighted CDF)."""
    order = np.argsort(values)
    v, w = values[order], np.asarray(weights, dtype="float64")[order]
    cum = np.cumsum(w) / w.sum()
    return v[np.minimum(np.searchsorted(cum, q), len(v) - 1)]


def distinct_rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct combinations of `columns` (those present) in `frame`: each row's
    combination number and the first row of each combination, so that a design built on
    frame.iloc[first] and indexed by the numbers equals the design of every row (a
    claimant frame holds some 400 k rows but a few thousand combinations). Missing values
    are a value of their own, as in a group-by with dropna=False."""
    present = [c for c in columns if c in frame]
    if not present or len(frame) == 0:
        return np.arange(len(frame)), np.arange(len(frame))
    # one integer per row from the columns' codes (mixed radix), made dense again before
    # it could overflow: a third of the time of pandas' group numbering, asked dozens of
    # times of the same claimants per training
    key, size = np.zeros(len(frame), dtype="int64"), 1
    for column in present:
        codes, n = _codes(frame[column])
        if size * n >= 2**62:
            _, key = np.unique(key, return_inverse=True)
            size = int(key.max()) + 1
        key, size = key * n + codes, size * n
    _, first, codes = np.unique(key, return_index=True, return_inverse=True)
    return codes.reshape(-1).astype("int64"), first


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Each value's code in 0..n-1 and n (a categorical by its codes, missing as 0)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype("int64") + 1, len(values.cat.categories) + 1
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype("int64"), max(len(uniques), 1)


def _level_text(values) -> np.ndarray:
    """Each value as text (the levels' common form): each distinct value converted once,
    so that a column of a million claimants with a few levels costs one hash pass; a
    categorical column (a Series) by its codes, without hashing."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if (codes >= 0).all():
            return _level_text(np.asarray(values.cat.categories, dtype=object))[codes]
    codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=False)
    # str() of each of the few distinct values (what Series.astype(str) calls), without
    # building a Series: the design is made thousands of times in cross-validation
    text = np.array([str(u) for u in uniques], dtype=str)
    return text[codes]


def _distinct_text(values) -> set[str]:
    """The distinct values as `_level_text` writes them, without writing every row (the
    design learns its levels on every cross-validation fold)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.unique(values.cat.codes.to_numpy())
        if (codes >= 0).all():
            return {str(v) for v in np.asarray(values.cat.categories, dtype=object)[codes]}
    return {str(u) for u in pd.factorize(np.asarray(values), use_na_sentinel=False)[1]}


class CohortDesign:
    """Fit once on training cells, then map any cells to the same design columns.

    age: "spline" (cubic B-splines, `n_knots` knots at quantiles of the training ages),
    "bands" (one indicator per age band `age_band_width` years wide, the first band the
    reference) or "linear" ((age - 40) / 10).
    keys: the cohort keys (one indicator per level but the first); None = every column the
    contract does not reserve. interactions: keys whose levels each get their own age curve.
    band_width: of the cells' age bands (for band middles when a row has no `age`).
    trend: a calendar-year column (year - base_year).
    """

    def __init__(self, age: str = "spline", n_knots: int = 6, base_year: int = 2019,
                 band_width: int = 5, keys: tuple[str, ...] | None = None,
                 interactions: tuple[str, ...] = (), age_band_width: int | None = None,
                 trend: bool = True):
        if age not in AGE_KINDS:
            raise ValueError(f"age must be one of {', '.join(AGE_KINDS)}; got {age!r}")
        self.age, self.n_knots, self.base_year = age, n_knots, base_year
        self.band_width, self.keys, self.interactions = band_width, keys, tuple(interactions)
        self.age_band_width = age_band_width or band_width
        self.trend = trend

    def fit(self, cells: pd.DataFrame, weight: np.ndarray | None = None) -> CohortDesign:
        """Learn the age range, knots, bands and key levels of the training cells
        (weights: exposure or claimants, for the knots)."""
        keys = key_columns(cells) if self.keys is None else tuple(self.keys)
        missing = [k for k in (*keys, *self.interactions) if k not in cells]
        if missing:
            raise ValueError(f"the cells lack the cohort keys {missing}")
        self.keys_ = keys
        self.levels_ = {k: self._levels(k, cells[k]) for k in keys}
        ages = ages_of(cells, self.band_width)
        w = np.ones(len(ages)) if weight is None else np.asarray(weight, dtype="float64")
        self.age_range_ = (float(ages.min()), float(ages.max()))
        if self.age == "spline":
            self._fit_spline(ages, w)
        elif self.age == "bands":
            self.bands_ = np.unique(self._band(ages))
        return self

    @staticmethod
    def _levels(key: str, values: pd.Series) -> tuple:
        if key == "special_group":
            return (False, True)
        found = _distinct_text(values)
        if key in FIXED_LEVELS:  # the scheme's order: F before M, urban before rural
            return tuple(v for v in FIXED_LEVELS[key] if v in found) or FIXED_LEVELS[key][:1]
        return tuple(sorted(found))

    def _fit_spline(self, ages: np.ndarray, weight: np.ndarray) -> None:
        """Knots at weighted quantiles of the training ages (repeats dropped), the basis
        constant beyond them: no age curve is extrapolated."""
        knots = np.unique(weighted_quantiles(ages, np.maximum(weight, 1e-12),
                                             np.linspace(0, 1, self.n_knots)))
        knots[0], knots[-1] = self.age_range_
        knots = np.unique(knots)
        self.knots_ = knots
        if len(knots) < 2:  # one age only: the age effect is the intercept
            self.spline_ = None
            return
        self.spline_ = SplineTransformer(knots=knots[:, None], degree=3, include_bias=False,
                                         extrapolation="constant")
        self.spline_.fit(knots[:, None])

    def _band(self, ages: np.ndarray) -> np.ndarray:
        return (np.floor(ages) // self.age_band_width) * self.age_band_width

    def age_columns(self, age: np.ndarray) -> np.ndarray:
        """The age basis at `age` (years), clipped to the training range."""
        age = np.clip(np.asarray(age, dtype="float64"), *self.age_range_)
        if self.age == "spline":
            if self.spline_ is None:
                return np.zeros((len(age), 0))
            return self.spline_.transform(age[:, None])
        if self.age == "bands":
            return (self._band(age)[:, None] == self.bands_[None, 1:]).astype("float64")
        return ((age - 40) / 10)[:, None]

    def _indicators(self, key: str, values) -> np.ndarray:
        """One column per level of `key` but the first (unseen levels: all zero)."""
        levels = self.levels_[key]
        if key == "special_group":
            return np.asarray(values, dtype=bool).astype("float64")[:, None]
        text = _level_text(values)
        return (text[:, None] == np.array(levels[1:], dtype=str)[None, :]).astype("float64")

    def transform(self, cells: pd.DataFrame) -> np.ndarray:
        """Design matrix (rows of `cells`) without intercept."""
        age = self.age_columns(ages_of(cells, self.band_width))
        parts = [age]
        for key in self.keys_:
            parts.append(self._indicators(key, cells[key]))
        for key in self.interactions:
            ind = self._indicators(key, cells[key])
            parts.append((ind[:, :, None] * age[:, None, :]).reshape(len(age), -1))
        if self.trend:
            parts.append((cells["year"].to_numpy(dtype="float64") - self.base_year)[:, None])
        return np.hstack(parts)

    def names(self) -> list[str]:
        """A name per design column, e.g. age_3, sex=M, sex=M:age_3, trend."""
        if self.age == "spline":
            n_age = 0 if self.spline_ is None else self.spline_.n_features_out_
            ages = [f"age_{i}" for i in range(n_age)]
        elif self.age == "bands":
            ages = [f"age_{int(b)}" for b in self.bands_[1:]]
        else:
            ages = ["age_per_10y"]
        names = list(ages)
        for key in self.keys_:
            names += ([key] if key == "special_group" else
                      [f"{key}={v}" for v in self.levels_[key][1:]])
        for key in self.interactions:
            for level in (["True"] if key == "special_group" else self.levels_[key][1:]):
                names += [f"{key}={level}:{a}" for a in ages]
        return [*names, *(["trend"] if self.trend else [])]
