"""The project configuration: cohorts, how the data read and the model settings, in one
TOML file (`ciplan.toml` in the data directory, or `--project FILE`), each value
overridable on the command line. Nothing in it is an L-city constant: the defaults are
L city's, every other portfolio says its own.

```toml
[cohorts]
band_width = 5                   # years per age band
age_max = 85                     # the last band is open from here (a multiple of band_width)
keys = ["sex", "district"]       # categorical member columns; default: those of sex,
                                 # residence, special_group, region the members table has
[data]
reported_above = 0.0             # claims reported only from this annual cost on (0: all)
threshold_rule = "above"         # or "at-or-above"
currency = "CNY"                 # the money unit, as printed
[models]
frequency_rows = "cells"         # or "ages": fit frequency on cells at single ages
interactions = ["sex"]           # keys whose levels get their own age curve (candidates)
credibility_k = 200.0            # claimants at which a cohort's own costs weigh half
splice_quantile = "profile"      # or a quantile such as 0.95 to fix the splice point
min_backtest_claimants = 30      # backtest years with fewer held-out claimants are left out
[development]                    # completing years not all settled on --as-of
method = "chain-ladder"          # or "bornhuetter-ferguson" (prior: the earlier years' trend)
level = 0.9                      # coverage of the completion's interval
negotiation_date = "01-31"       # MM-DD: as-of backtests see each origin's data as of then
negotiation_in = "contract year" # or "year before" (a negotiation in December)
group_by = ""                    # a cohort key to develop each of its groups apart ("": none)
min_claimants = 200              # a thinner group (latest year) takes the portfolio's factors
tail = 1.0                       # development beyond the oldest year's age (1: none)
```
"""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from forecasting.data.cohorts import CohortSpec
from forecasting.data.io import read_text
from forecasting.errors import InputError

PROJECT_FILE = "ciplan.toml"


def _profile(value):
    return None if isinstance(value, str) and value.lower() == "profile" else value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cohorts(_Frozen):
    band_width: int = Field(default=5, ge=1)
    age_max: int = Field(default=85, ge=1)
    keys: tuple[str, ...] | None = None

    def spec(self) -> CohortSpec:
        """The CohortSpec (keys None: load_data takes them from the data)."""
        try:
            return CohortSpec(self.band_width, self.age_max, self.keys)
        except ValueError as exc:
            raise InputError(f"cohorts: {exc}") from None


# The money unit of data that name none, and of a forecast or plan made before `[data]
# currency` was recorded in them: the data contract's default.
DEFAULT_CURRENCY = "CNY"


class Data(_Frozen):
    reported_above: float = Field(default=0.0, ge=0)
    threshold_rule: Literal["above", "at-or-above"] = "above"
    currency: str = Field(default=DEFAULT_CURRENCY, min_length=1)


class Models(_Frozen):
    frequency_rows: Literal["cells", "ages"] = "cells"
    interactions: tuple[str, ...] = ("sex",)
    credibility_k: float = Field(default=200.0, gt=0)
    splice_quantile: Annotated[float | None, BeforeValidator(_profile)] = Field(
        default=None, gt=0, lt=1)
    min_backtest_claimants: int = Field(default=30, ge=0)


def _month_day(value: str) -> str:
    """A negotiation date as MM-DD (a day every year has)."""
    try:
        datetime.date(2001, *map(int, str(value).split("-")))
    except (TypeError, ValueError):
        raise ValueError(f"expected a day of the year as MM-DD like 01-31; got {value!r}"
                         ) from None
    return str(value)


class Development(_Frozen):
    method: Literal["chain-ladder", "bornhuetter-ferguson"] = "chain-ladder"
    level: float = Field(default=0.9, gt=0, lt=1)
    negotiation_date: Annotated[str, AfterValidator(_month_day)] = "01-31"
    negotiation_in: Literal["contract year", "year before"] = "contract year"
    group_by: str = ""
    min_claimants: int = Field(default=200, ge=1)
    tail: float = Field(default=1.0, ge=1.0, le=10.0)

    def negotiation(self, year: int) -> datetime.date:
        """The day the negotiation of `year`'s contract is held: `negotiation_date` in that
        year, or in the year before (a December negotiation)."""
        held = year - 1 if self.negotiation_in == "year before" else year
        return datetime.date(held, *map(int, self.negotiation_date.split("-")))


class ProjectConfig(_Frozen):
    """Cohorts, data reading and model settings of a project (see module doc)."""

    cohorts: Cohorts = Cohorts()
    data: Data = Data()
    models: Models = Models()
    development: Development = Development()

    def overridden(self, **changes) -> ProjectConfig:
        """A copy with `section__key=value` changes (None values are ignored), validated."""
        doc = self.model_dump()
        for name, value in changes.items():
            if value is not None:
                section, key = name.split("__")
                doc[section][key] = value
        return _validated(doc, "command line")


def _validated(doc: dict, where: str) -> ProjectConfig:
    try:
        return ProjectConfig.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(f"{where}: {loc}: {err['msg']}") from None


def load_project(path: Path | None, data_dir: Path | None = None) -> ProjectConfig:
    """The project configuration: `path`, else `ciplan.toml` in the data directory, else
    the defaults. Errors name the file and the key."""
    if path is None and data_dir is not None and (Path(data_dir) / PROJECT_FILE).exists():
        path = Path(data_dir) / PROJECT_FILE
    if path is None:
        return ProjectConfig()
    try:
        doc = tomllib.loads(read_text(Path(path)))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    return _validated(doc, str(path))
