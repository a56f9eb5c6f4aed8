"""The plan space and the member-benefit constraints, read from TOML (the default ships
with the package: optimization/defaults/plan_space.toml)."""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import os
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
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


MIN_RATIO_STEP = 0.001  # the finest ratio grid searched as a grid (a tenth of a point)
# the most negotiating steps from 0 to the premium budget's max: the grid of premiums is
# searched step by step, and a typo of a step (1e-9) would build billions of premiums. A
# count, not an amount: money comes in the data's units (CNY, fen, thousands).
MAX_PREMIUM_STEPS = 100_000


class Frozen(BaseModel):
    """A section of the plan space: unknown keys, NaN and infinite numbers are refused (no
    cap is "none", not inf)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Premium(Frozen):
    """Premium per capita (a year, in the data's money unit): the bureau's budget, an
    optional fixed premium, and the step a negotiator signs (premiums are multiples of
    it)."""

    min: float = Field(gt=0)
    max: float = Field(gt=0)
    fixed: MaybeNumber = None
    # at most MAX_PREMIUM_STEPS steps up to max (checked below; money in the data's units)
    step: float = Field(gt=0, default=0.5)

    @model_validator(mode="after")
    def _order(self):
        if self.min > self.max:
            raise ValueError(f"premium min {self.min:g} must not exceed max {self.max:g}")
        if self.max / self.step > MAX_PREMIUM_STEPS:
            raise ValueError(f"a premium step of {self.step:g} makes more than "
                             f"{MAX_PREMIUM_STEPS:,} steps up to the max {self.max:g}: the "
                             "premiums are searched step by step; use a coarser step")
        lo, hi = self.grid()
        if lo > hi + 1e-9:
            raise ValueError(f"no multiple of the premium step {self.step:g} lies between "
                             f"min {self.min:g} and max {self.max:g}")
        if self.fixed is not None and not self.min <= self.fixed <= self.max:
            raise ValueError(f"fixed premium {self.fixed:g} must lie within min {self.min:g} "
                             f"and max {self.max:g}")
        return self

    def grid(self) -> tuple[float, float]:
        """The lowest and highest multiples of the step within [min, max]."""
        lo = math.ceil(self.min / self.step - 1e-9) * self.step
        hi = math.floor(self.max / self.step + 1e-9) * self.step
        return lo, hi


def _positive(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
    """Amounts of money that must be > 0 ("none" allowed where the type allows it)."""
    bad = [v for v in values if v is not None and not v > 0]
    if bad:
        raise ValueError(f"amounts must be > 0 (in the data's money unit); got {bad[0]:g}")
    return values


class Deductible(Frozen):
    candidates: tuple[float, ...] = Field(min_length=1)

    _check = field_validator("candidates")(_positive)


def _rising(values: tuple[float, ...]) -> tuple[float, ...]:
    """Band edges (CNY): each above the one before."""
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"band edges must rise; got {[float(v) for v in values]}")
    return values


class Bands(Frozen):
    edges: tuple[float, ...] = Field(min_length=1)
    ratio_min: float = Field(ge=0, le=1)
    ratio_max: float = Field(ge=0, le=1)
    step: float = Field(ge=0, le=1, default=0.05)

    _check = field_validator("edges")(_positive)
    _order = field_validator("edges")(_rising)

    @field_validator("step")
    @classmethod
    def _grid(cls, step: float) -> float:
        """0 (continuous ratios) or a negotiating grid of at least a tenth of a point: a
        finer grid is continuous ratios searched as billions of integers."""
        if 0 < step < MIN_RATIO_STEP:
            raise ValueError(f"a ratio step of {step:g} is finer than {MIN_RATIO_STEP:g} (a "
                             "tenth of a point); use 0 for continuous ratios")
        return step


class Cap(Frozen):
    candidates: tuple[MaybeNumber, ...] = Field(min_length=1)

    _check = field_validator("candidates")(_positive)


class Special(Frozen):
    deductible_factor: float = Field(gt=0, le=1, default=0.5)
    ratio_increment: float = Field(ge=0, le=0.5, default=0.05)
    cap: MaybeNumber = Field(gt=0, default=None)


class Costs(Frozen):
    opex_fixed: float = Field(ge=0, default=0.0)
    opex_share: float = Field(ge=0, lt=1, default=0.04)
    disposable_income: float = Field(gt=0)


class ContractTerms(Frozen):
    """How the contract settles a year (shares of premium income; see
    optimization.contract): surplus above `surplus_keep` returned at `surplus_return`;
    losses shared in `loss_layers` (from, to or "none", the fund's share); an optional
    stop-loss; the share of payouts a policy change caused, borne by the fund; the operating
    cost the contract recognises at most."""

    surplus_keep: float = Field(ge=0, default=0.05)
    surplus_return: float = Field(ge=0, le=1, default=1.0)
    loss_layers: tuple[tuple[float, MaybeNumber, float], ...] = ()
    stop_loss: MaybeNumber = None
    policy_shock: float = Field(ge=0, lt=1, default=0.0)
    opex_cap_share: MaybeNumber = None

    @field_validator("loss_layers")
    @classmethod
    def _layers(cls, layers):
        previous = 0.0
        for lo, hi, share in layers:
            if lo < previous or (hi is not None and hi <= lo) or not 0 <= share <= 1:
                raise ValueError("loss_layers: each [from, to, fund share] must start at or "
                                 "after the previous one's end, end above its start, and "
                                 f"give the fund a share in [0, 1]; got {[lo, hi, share]}")
            previous = np.inf if hi is None else hi
        return layers

    def words(self) -> dict[str, str]:
        """The terms as MLflow params (flat, comparable across runs)."""
        layers = "; ".join(f"{lo:.0%}-{'' if hi is None else f'{hi:.0%}'} fund {s:.0%}"
                           for lo, hi, s in self.loss_layers) or "none"
        return {"contract_surplus_keep": f"{self.surplus_keep:g}",
                "contract_surplus_return": f"{self.surplus_return:g}",
                "contract_loss_layers": layers,
                "contract_stop_loss": "none" if self.stop_loss is None else f"{self.stop_loss:g}",
                "contract_policy_shock": f"{self.policy_shock:g}",
                "contract_opex_cap": "none" if self.opex_cap_share is None
                else f"{self.opex_cap_share:g}"}


class Contract(ContractTerms):
    """The [contract] section: the settlement terms in force, the rule on the expected
    surplus (profit_cap_share), the most the fund can expect to top up a year
    (fund_topup_budget, for questions after settlement), and candidate corridors a
    negotiation may choose from: the
    insurer bears losses up to a retention, the fund bears `fund_share` of the next
    `corridor_width` (and all above it when `fund_above`)."""

    profit_cap_share: float = Field(ge=0, default=0.05)
    fund_topup_budget: MaybeNumber = None
    retention_candidates: tuple[Annotated[float, Field(ge=0)], ...] = ()
    fund_share_candidates: tuple[Annotated[float, Field(ge=0, le=1)], ...] = ()
    corridor_width: MaybeNumber = Field(gt=0, default=0.05)
    fund_above: bool = True

    def terms(self) -> ContractTerms:
        """The terms in force."""
        return ContractTerms(**{k: getattr(self, k) for k in ContractTerms.model_fields})

    def candidates(self) -> list[ContractTerms]:
        """The terms in force and every candidate corridor."""
        out = [self.terms()]
        for a, share in itertools.product(self.retention_candidates,
                                          self.fund_share_candidates):
            top = None if self.corridor_width is None else a + self.corridor_width
            layers = [(a, top, share)]
            if top is not None and self.fund_above:
                layers.append((top, None, 1.0))
            out.append(self.terms().model_copy(update={"loss_layers": tuple(layers)}))
        return out


class Constraints(Frozen):
    effective_ratio: bool = True
    effective_ratio_floor: float = Field(ge=0, le=1, default=0.60)
    deductible_income: bool = True
    deductible_income_share: float = Field(gt=0, default=0.5)
    nominal_ratio: bool = False
    nominal_ratio_floor: float = Field(ge=0, le=1, default=0.60)
    ratios_increasing: bool = True
    no_worse: bool = True
    profit_cap: bool = True


class Report(Frozen):
    """What the report shows: a member's payout at these annual costs (the currency of
    the data), and the bands of the member-impact table (edges; the plan's own deductible
    and band edges are added)."""

    cost_levels: tuple[float, ...] = (20_000.0, 50_000.0, 100_000.0, 200_000.0, 500_000.0)

    _check = field_validator("cost_levels")(_positive)


class Risk(Frozen):
    """Risk measures over the forecast's scenarios. cvar_budget (CNY) bounds CVaR of the
    loss for the `cvar` objective; the insurer's risk appetite, for the `risk` objective
    and proposal C, is CVaR of the loss <= cvar_share x premium income ("cvar") or
    P(loss > 0) <= prob_loss_max ("prob_loss")."""

    cvar_level: float = Field(gt=0, lt=1, default=0.95)
    cvar_budget: float = 6_000_000.0
    scenarios: int = Field(ge=20, default=1000)
    appetite: Literal["cvar", "prob_loss"] = "cvar"
    cvar_share: float = Field(ge=0, default=0.05)
    prob_loss_max: float = Field(ge=0, le=1, default=0.2)


@functools.cache
def _highs_banner_said() -> None:
    """HiGHS prints its banner ("Running HiGHS …") on the process's stdout the first time
    a solver is made, before `msg=False` can turn its output off: make that first one with
    the standard output file descriptor pointed at /dev/null, once per process."""
    try:
        import highspy
    except ImportError:
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
            ctypes.CDLL(None).fflush(None)  # C's buffered stdout goes to /dev/null too
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _highs(**opts):
    _highs_banner_said()
    return pulp.HiGHS(**opts)


def _cbc(**opts):
    import cbcbox  # CBC's binary, from the pulp[cbc] extra

    return pulp.COIN_CMD(path=cbcbox.cbc_bin_path(), **opts)


# MILP solvers by name -> a PuLP solver built from (msg, timeLimit, gapRel); adding one
# touches this table only.
SOLVERS = {"highs": _highs, "cbc": _cbc}


class Solver(Frozen):
    """name: the MILP solver of the linear programmes (branch and bound on the cap level,
    shadow prices); enumeration_limit: stepped spaces with at most this many plans are
    priced exhaustively (exact and fastest), larger ones and continuous ratios go to
    branch and bound; tolerance: the optimality gap branch and bound proves, as a share of
    the largest premium income (premium objectives: a tenth of the negotiating step)."""

    name: str = "highs"
    time_limit: float = Field(gt=0, default=60.0)
    mip_gap: float = Field(ge=0, default=1e-6)
    enumeration_limit: int = Field(ge=0, default=500_000)
    tolerance: float = Field(gt=0, lt=1, default=1e-4)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {name!r}")
        return name


class Term(Frozen):
    """The contract's term (DESIGN §6), projected year by year from the forecast.

    premium_index: growth of the premium per capita a year (a share, or "income" to follow
    disposable income); income_growth: of per-capita disposable income a year;
    deductible_rule: "income" re-sets the deductible each year to the income rule
    (deductible_income_share of last year's income), "fixed" keeps it; cost_trend and
    enrolment_trend: a year, as log rates ("data": the log-linear trend of the forecast's
    history: eligible cost above the deductible per insured, and insured); cost_trend_sd:
    uncertainty of each year's trend ("data": the history's residual spread), which
    accumulates over the term; ageing: cohorts age a year each year."""

    years: int = Field(ge=1, le=10, default=3)
    premium_index: float | Literal["income"] = 0.0
    income_growth: float = 0.03
    deductible_rule: Literal["income", "fixed"] = "income"
    cost_trend: float | Literal["data"] = "data"
    cost_trend_sd: float | Literal["data"] = "data"
    enrolment_trend: float | Literal["data"] = "data"
    ageing: bool = True


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
    report: Report = Report()
    term: Term = Term()

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
