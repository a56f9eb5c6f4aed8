"""Cohorts: age band x sex x residence x special group, the unit every model prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEXES = ("F", "M")
RESIDENCES = ("urban", "rural")
COHORT_KEYS = ("age_band", "sex", "residence", "special_group", "region")


@dataclass(frozen=True)
class CohortSpec:
    """How member-years are grouped: age bands of `band_width` years, the last open from `age_max`.

    `keys` chooses which of sex, residence, special_group split the cohorts (age band always does).
    """

    band_width: int = 5
    age_max: int = 85
    keys: tuple[str, ...] = ("sex", "residence", "special_group")

    def __post_init__(self) -> None:
        if self.band_width < 1 or self.age_max < self.band_width:
            raise ValueError("band_width must be >= 1 and age_max >= band_width")
        unknown = set(self.keys) - set(COHORT_KEYS[1:])
        if unknown:
            raise ValueError(f"unknown cohort keys {sorted(unknown)}; expected {COHORT_KEYS[1:]}")

    @property
    def n_bands(self) -> int:
        return self.age_max // self.band_width + 1

    @property
    def columns(self) -> list[str]:
        return ["age_band", *self.keys]

    def band(self, age: np.ndarray) -> np.ndarray:
        """Lower edge of each age's band (years); ages >= age_max fall in the last band."""
        age = np.asarray(age)
        return np.minimum(age // self.band_width, self.n_bands - 1) * self.band_width

    def label(self, band_lower: int) -> str:
        """Printable band, e.g. '45-49' or '85+'."""
        if band_lower >= (self.n_bands - 1) * self.band_width:
            return f"{band_lower}+"
        return f"{band_lower}-{band_lower + self.band_width - 1}"
