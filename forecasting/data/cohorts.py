"""Cohorts: age band x cohort keys, the unit every model prices.

The keys are categorical columns of the members table, chosen by the data or the project
configuration: L city's sex, residence and special group (and region for several cities),
or any other (district, insurance type, person type, ...). Three keys have a fixed
vocabulary because the scheme's rules read them: sex (F/M), residence (urban/rural) and
special_group (true/false). Every other key is free text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SEXES = ("F", "M")
RESIDENCES = ("urban", "rural")
# keys with a fixed vocabulary; special_group is a boolean
FIXED_LEVELS = {"sex": SEXES, "residence": RESIDENCES}
STANDARD_KEYS = ("sex", "residence", "special_group", "region")
# columns of the members table that can never be cohort keys
RESERVED = ("member_id", "year", "age", "birth_year", "exposure", "age_band", "period_start",
            "period_end", "insured", "claimants", "claims", "cost")
AGE_LIMIT = 120  # oldest age the contract accepts (years)


@dataclass(frozen=True)
class CohortSpec:
    """How member-years are grouped: age bands of `band_width` years, the last open from
    `age_max`, times every key in `keys` (names of categorical columns of the members;
    None: load_data takes L city's keys the data have, see default_keys)."""

    band_width: int = 5
    age_max: int = 85
    keys: tuple[str, ...] | None = ("sex", "residence", "special_group")

    def __post_init__(self) -> None:
        if self.keys is not None:
            object.__setattr__(self, "keys", tuple(self.keys))
        self._check()

    def _check(self) -> None:
        if self.band_width < 1 or self.age_max < self.band_width:
            raise ValueError("band_width must be >= 1 and age_max >= band_width")
        if self.age_max % self.band_width:
            raise ValueError(f"age_max must be a multiple of band_width; got {self.age_max} "
                             f"and {self.band_width}")
        keys = self.keys or ()
        reserved = sorted(set(keys) & set(RESERVED))
        if reserved:
            raise ValueError(f"cohort keys cannot be {reserved}: these columns have their own "
                             "meaning in the data contract")
        if len(set(keys)) != len(keys):
            raise ValueError(f"cohort keys repeat: {list(keys)}")

    @property
    def n_bands(self) -> int:
        return self.age_max // self.band_width + 1

    @property
    def columns(self) -> list[str]:
        return ["age_band", *self.keys]

    @property
    def standard(self) -> bool:
        """Whether every key is one of L city's (what the SQL engines read)."""
        return set(self.keys) <= set(STANDARD_KEYS)

    def fine(self) -> CohortSpec:
        """The same keys at single years of age up to the contract's oldest age: cells that
        hold, for any model of age, keys and year, all the member rows hold."""
        return replace(self, band_width=1, age_max=AGE_LIMIT)

    def band(self, age: np.ndarray) -> np.ndarray:
        """Lower edge of each age's band (years); ages >= age_max fall in the last band."""
        age = np.asarray(age)
        return np.minimum(age // self.band_width, self.n_bands - 1) * self.band_width

    def label(self, band_lower: int) -> str:
        """Printable band, e.g. '45-49' or '85+'."""
        if band_lower >= (self.n_bands - 1) * self.band_width:
            return f"{band_lower}+"
        if self.band_width == 1:
            return str(band_lower)
        return f"{band_lower}-{band_lower + self.band_width - 1}"


def default_keys(columns: list[str]) -> tuple[str, ...]:
    """The cohort keys when the configuration names none: L city's keys the data have."""
    return tuple(k for k in STANDARD_KEYS if k in columns)
