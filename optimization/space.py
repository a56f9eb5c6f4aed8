"""The plan space and the member-benefit constraints, read from TOML (the default ships
with the package: optimization/defaults/plan_space.toml)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated

import pulp
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from forecasting.data.io import read_text
from forecasting.errors import InputError


def _none(value):
    return None if isinstance(value, str) and value.lower() == "none" else value


MaybeNumber = Annotated[float | None, BeforeValidator(_none)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Premium(Frozen):
    min: float = Field(gt=0)
    max: float = Field(gt=0)
    fixed: MaybeNumber = None

    @model_validator(mode="after")
    def _order(self):
        if self.min > self.max:
            raise ValueError("premium min must not exceed max")
        if self.fixed is not None and not self.min <= self.fixed <= self.max:
            raise ValueError(f"fixed premium {self.fixed:g} must lie within min {self.min:g} "
                             f"and max {self.max:g}")
        return self


def _positive(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
    """Amounts of money that must be > 0 ("none" allowed where the type allows it)."""
    bad = [v for v in values if v is not None and not v > 0]
    if bad:
        raise ValueError(f"amounts must be > 0 CNY; got {bad[0]:g}")
    return values


class Deductible(Frozen):
    candidates: tuple[float, ...] = Field(min_length=1)

    _check = field_validator("candidates")(_positive)


class Bands(Frozen):
    edges: tuple[float, ...]
    ratio_min: float = Field(ge=0, le=1)
    ratio_max: float = Field(ge=0, le=1)
    step: float = Field(ge=0, le=1, default=0.05)


class Cap(Frozen):
    candidates: tuple[MaybeNumber, ...] = Field(min_length=1)

    _check = field_validator("candidates")(_positive)


class Special(Frozen):
    deductible_factor: float = Field(gt=0, le=1, default=0.5)
    ratio_increment: float = Field(ge=0, le=0.5, default=0.05)
    cap: MaybeNumber = Field(gt=0, default=None)


class Costs(Frozen):
    opex_fixed: float = 0.0
    opex_share: float = Field(ge=0, lt=1, default=0.04)
    disposable_income: float = Field(gt=0)


class Contract(Frozen):
    profit_cap_share: float = Field(ge=0, default=0.05)


class Constraints(Frozen):
    effective_ratio: bool = True
    effective_ratio_floor: float = Field(ge=0, le=1, default=0.60)
    deductible_income: bool = True
    deductible_income_share: float = Field(gt=0, default=0.5)
    ratios_increasing: bool = True
    no_worse: bool = True
    no_worse_levels: tuple[float, ...] = (30_000.0, 50_000.0, 100_000.0, 200_000.0, 400_000.0)
    profit_cap: bool = True


class Risk(Frozen):
    cvar_level: float = Field(gt=0, lt=1, default=0.95)
    cvar_budget: float = 6_000_000.0
    scenarios: int = Field(ge=20, default=1000)


def _highs(**opts):
    return pulp.HiGHS(**opts)


def _cbc(**opts):
    import cbcbox  # CBC's binary, from the pulp[cbc] extra

    return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), **opts)


# MILP solvers by name -> a PuLP solver built from (msg, timeLimit, gapRel); adding one
# touches this table only.
SOLVERS = {"highs": _highs, "cbc": _cbc}


class Solver(Frozen):
    name: str = "highs"
    time_limit: float = Field(gt=0, default=60.0)
    mip_gap: float = Field(ge=0, default=1e-6)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {name!r}")
        return name


class PlanSpace(Frozen):
    """Everything the optimiser may choose, and what it must respect."""

    premium: Premium
    deductible: Deductible
    bands: Bands
    cap: Cap
    special: Special = Special()
    costs: Costs
    contract: Contract = Contract()
    constraints: Constraints = Constraints()
    risk: Risk = Risk()
    solver: Solver = Solver()

    def with_free_premium(self) -> PlanSpace:
        """The same space with the premium chosen within its bounds (no fixed premium)."""
        return self.model_copy(update={"premium": self.premium.model_copy(
            update={"fixed": None})})

    @model_validator(mode="after")
    def _coherent(self):
        if self.bands.ratio_min > self.bands.ratio_max:
            raise ValueError("bands ratio_min must not exceed ratio_max")
        if self.bands.ratio_max + self.special.ratio_increment > 1:
            raise ValueError("bands ratio_max + special ratio_increment must be <= 1")
        if any(d >= self.bands.edges[0] for d in self.deductible.candidates):
            raise ValueError("every deductible candidate must lie below the first band edge")
        return self


DEFAULT_SPACE = "plan_space.toml"  # package data of optimization.defaults


def default_space_text() -> str:
    """The default plan space as shipped in the package (found through the package, so it
    works from a wheel as from a checkout)."""
    return resources.files("optimization.defaults").joinpath(DEFAULT_SPACE).read_text(
        encoding="utf-8")


def load_space(path: Path | None = None) -> PlanSpace:
    """Read and check a plan-space TOML; errors name the file and the key."""
    if path is None:
        path, text = Path(DEFAULT_SPACE), default_space_text()
    else:
        path = Path(path)
        text = read_text(path)
    try:
        return PlanSpace.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise InputError(f"{path}: {where}: {err['msg']}") from None
