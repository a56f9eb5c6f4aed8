"""`ciplan project`: a plan over the contract's term, year by year and in total, before
and after settlement, with the fund's position (optimization.projection)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forecasting.data.io import read_text
from forecasting.data.publish import publish
from forecasting.errors import InputError
from forecasting.forecast import Forecast
from forecasting.scheme.in_force import plan_from_dict
from forecasting.scheme.plan import Plan
from optimization.projection import Projection, project
from optimization.space import ContractTerms, PlanSpace
from pipelines.conventions import PLAN_FILE
from pipelines.workflows.propose import status_quo_of


@dataclass(frozen=True)
class TermResult:
    plan: Plan
    terms: ContractTerms
    projection: Projection


def plan_of_folder(folder: Path) -> tuple[Plan, ContractTerms | None]:
    """The plan (and its contract terms) of a `ciplan optimize` folder."""
    path = Path(folder) / PLAN_FILE
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or "plan" not in doc:
        raise InputError(f"{path}: expected a plan written by `ciplan optimize`")
    terms = doc.get("contract")
    return plan_from_dict(f"{path} plan", doc["plan"]), (
        ContractTerms.model_validate(terms) if terms else None)


def run_term(forecast: Forecast, space: PlanSpace, out: Path, plan_dir: Path | None = None,
             seed: int = 0) -> TermResult:
    """Project the plan of `plan_dir` (default: today's plan) over the term; write
    term.csv and settlement.parquet into `out` at once."""
    plan, terms = plan_of_folder(plan_dir) if plan_dir else (status_quo_of(forecast, space),
                                                              None)
    terms = terms or space.contract.terms()
    result = project(forecast, plan, space, terms, space.costs.disposable_income,
                     n=space.risk.scenarios, seed=seed)
    inputs = {"forecast_run": forecast.provenance.get("forecast_run"),
              "plan": str(plan_dir) if plan_dir else "today", "years": space.term.years}
    with publish(Path(out), "term", inputs) as tmp:
        result.years.to_csv(tmp / "term.csv", index=False)
        result.scenarios.to_parquet(tmp / "settlement.parquet", index=False)
    return TermResult(plan, terms, result)
