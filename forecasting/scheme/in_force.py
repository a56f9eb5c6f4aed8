"""The scheme of a data directory (`scheme.toml`): the plan in force and the market, per year.
Money in the data's money unit (`[data] currency`); L city's, below, in CNY:

```toml
[plan.2021]
premium_per_capita = 60.0      # CNY per insured person a year
deductible = 15000.0           # CNY of annual eligible cost
band_edges = [50000.0, 100000.0, 200000.0]
ratios = [0.60, 0.65, 0.70, 0.75]
cap = 300000.0                 # CNY a year; "none" for no cap
[plan.2021.special]
deductible_factor = 0.5
ratio_increment = 0.05
cap = "none"
[market.2021]
eligible_population = 2230000  # residents who could enrol
disposable_income = 31000.0    # per-capita disposable income, CNY a year
opex_fixed = 0.0               # operating cost, CNY a year
opex_share = 0.04              # operating cost as share of premium income
```
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tomli_w

from forecasting.data.io import read_text
from forecasting.errors import InputError
from forecasting.scheme.plan import Plan, SpecialRules


@dataclass(frozen=True)
class Market:
    """What surrounds the plan in a year: who could enrol, incomes, what running it costs."""

    eligible_population: int
    disposable_income: float
    opex_fixed: float = 0.0
    opex_share: float = 0.04

    def operating_cost(self, premium_income: float) -> float:
        """The insurer's operating cost in CNY for a year's premium income."""
        return self.opex_fixed + self.opex_share * premium_income


@dataclass(frozen=True)
class Scheme:
    """Plan in force and market, each keyed by year."""

    plans: dict[int, Plan]
    markets: dict[int, Market]
    source: str = field(default="scheme.toml", compare=False)  # where read, for messages

    def plan(self, year: int) -> Plan:
        """The plan in force in `year`; pricing a year needs it (forecasting does not)."""
        if year not in self.plans:
            raise InputError(f"{self.source}: no [plan.{year}]; pricing {year} needs the plan "
                             f"in force then (plans for {_years(self.plans)})")
        return self.plans[year]

    def market(self, year: int) -> Market:
        if year not in self.markets:
            raise InputError(f"{self.source}: no [market.{year}] (markets for "
                             f"{_years(self.markets)})")
        return self.markets[year]

    def latest_plan(self, year: int) -> tuple[int, Plan] | None:
        """The plan in force in `year`, else the latest before it; None without one."""
        known = [y for y in self.plans if y <= year]
        return (max(known), self.plans[max(known)]) if known else None


def _years(table: dict) -> str:
    return ", ".join(map(str, sorted(table))) or "no year"


def _number(where: str, table: dict, key: str, default=None, none_ok: bool = False):
    value = table.get(key, default)
    if value is None and default is None and key not in table:
        raise InputError(f"{where}: missing key {key!r}")
    if none_ok and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: key {key!r} expected a number; got {value!r}")
    return float(value)


def _numbers(where: str, table: dict, key: str) -> tuple[float, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise InputError(f"{where}: key {key!r} expected a list of numbers; got {value!r}")
    return tuple(float(v) for v in value)


def plan_from_dict(where: str, table: dict) -> Plan:
    """A Plan from a TOML table, with errors naming the file, year and key."""
    sp = table.get("special", {})
    special = SpecialRules(
        deductible_factor=_number(f"{where}.special", sp, "deductible_factor", 0.5),
        ratio_increment=_number(f"{where}.special", sp, "ratio_increment", 0.05),
        cap=_number(f"{where}.special", sp, "cap", "none", none_ok=True),
    )
    fields = dict(
        premium_per_capita=_number(where, table, "premium_per_capita"),
        deductible=_number(where, table, "deductible"),
        band_edges=_numbers(where, table, "band_edges"),
        ratios=_numbers(where, table, "ratios"),
        cap=_number(where, table, "cap", none_ok=True),
        special=special,
    )
    try:
        return Plan(**fields)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def plan_to_dict(plan: Plan) -> dict:
    """A Plan as a TOML/JSON-ready table ("none" for a missing cap)."""
    out = asdict(plan)
    out["band_edges"], out["ratios"] = list(plan.band_edges), list(plan.ratios)
    out["cap"] = "none" if plan.cap is None else plan.cap
    out["special"]["cap"] = "none" if plan.special.cap is None else plan.special.cap
    return out


def load_scheme(path: Path) -> Scheme:
    """Read and check a scheme.toml; every year with a plan needs a market and vice versa."""
    path = Path(path)
    try:
        doc = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    plans, markets = {}, {}
    for section in ("plan", "market"):
        if not isinstance(doc.get(section), dict) or not doc[section]:
            raise InputError(f"{path}: missing [{section}.YEAR] tables")
    for key, table in doc["plan"].items():
        plans[_year(path, "plan", key)] = plan_from_dict(f"{path} [plan.{key}]", table)
    for key, table in doc["market"].items():
        where = f"{path} [market.{key}]"
        markets[_year(path, "market", key)] = Market(
            eligible_population=int(_number(where, table, "eligible_population")),
            disposable_income=_number(where, table, "disposable_income"),
            opex_fixed=_number(where, table, "opex_fixed", 0.0),
            opex_share=_number(where, table, "opex_share", 0.04),
        )
    if set(plans) != set(markets):
        odd = sorted(set(plans) ^ set(markets))
        raise InputError(f"{path}: years {odd} need both a [plan.YEAR] and a [market.YEAR]")
    return Scheme(plans, markets, str(path))


def _year(path: Path, section: str, key: str) -> int:
    if not key.isdigit() or not 1900 <= int(key) <= 2200:
        raise InputError(f"{path}: [{section}.{key}] expected a calendar year as table name")
    return int(key)


def scheme_to_toml(scheme: Scheme) -> str:
    """The text of a scheme.toml for `scheme`."""
    doc = {
        "plan": {str(y): plan_to_dict(p) for y, p in sorted(scheme.plans.items())},
        "market": {str(y): asdict(m) for y, m in sorted(scheme.markets.items())},
    }
    return tomli_w.dumps(doc)
