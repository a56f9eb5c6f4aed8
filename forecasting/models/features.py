"""The design of a cohort model: smooth age, one-hot cohort keys and a calendar-year trend.

Models take a frame of cell keys (year, age_band, sex, residence, special_group) and turn it
into numbers here, so frequency and severity GLMs share one parameterisation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import SplineTransformer

AGE_MAX = 100.0


def age_midpoint(age_band: np.ndarray, band_width: int = 5) -> np.ndarray:
    """Middle age of each band (years); the open last band counts as band_width wide."""
    return np.asarray(age_band, dtype="float64") + (band_width - 1) / 2


class CohortDesign:
    """Fit once on training cells, then map any cells to the same design columns.

    age: "spline" (cubic B-splines with `n_knots` knots over 0-100) or "linear".
    Columns: age basis, sex=M, residence=rural, special_group, year - base_year.
    """

    def __init__(self, age: str = "spline", n_knots: int = 6, base_year: int = 2019,
                 band_width: int = 5):
        if age not in ("spline", "linear"):
            raise ValueError(f"age must be 'spline' or 'linear'; got {age!r}")
        self.age, self.base_year, self.band_width = age, base_year, band_width
        self.spline = SplineTransformer(n_knots=n_knots, degree=3, include_bias=False)
        self.spline.fit(np.linspace(0, AGE_MAX, 101)[:, None])
        self.regions: tuple[str, ...] = ()

    def fit(self, cells: pd.DataFrame) -> CohortDesign:
        """Remember the regions of the training cells (one indicator each but the first)."""
        if "region" in cells:
            self.regions = tuple(sorted(set(cells["region"].astype(str))))
        return self

    def age_columns(self, age: np.ndarray) -> np.ndarray:
        age = np.asarray(age, dtype="float64")[:, None]
        return self.spline.transform(np.clip(age, 0, AGE_MAX)) if self.age == "spline" else (
            (age - 40) / 10)

    def transform(self, cells: pd.DataFrame) -> np.ndarray:
        """Design matrix (rows of `cells`) without intercept."""
        parts = [self.age_columns(age_midpoint(cells["age_band"].to_numpy(), self.band_width))]
        for key, level in (("sex", "M"), ("residence", "rural")):
            if key in cells:
                parts.append((cells[key].astype(str).to_numpy() == level)[:, None])
        if "special_group" in cells:
            parts.append(cells["special_group"].to_numpy(dtype=bool)[:, None])
        if len(self.regions) > 1:
            region = cells["region"].astype(str).to_numpy()
            parts.append(region[:, None] == np.array(self.regions[1:])[None, :])
        parts.append((cells["year"].to_numpy(dtype="float64") - self.base_year)[:, None])
        return np.hstack([p.astype("float64") for p in parts])

    def names(self, cells: pd.DataFrame) -> list[str]:
        n_age = self.age_columns(np.array([40.0])).shape[1]
        names = [f"age_{i}" for i in range(n_age)] if self.age == "spline" else ["age_per_10y"]
        names += [n for n, k in (("male", "sex"), ("rural", "residence"),
                                 ("special", "special_group")) if k in cells]
        names += [f"region_{r}" for r in self.regions[1:]]
        return [*names, "trend"]
