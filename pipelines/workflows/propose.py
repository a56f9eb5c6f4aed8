"""`ciplan optimize`: a Forecast + the plan space -> the optimal plan, its KPIs (the
evaluator's), shadow prices and the loss-benefit frontier, written to plan.json (the plan
folder is published whole, with a manifest naming the forecast content it came from) and
logged as an MLflow run in `plan-optimization` that points to the forecast run it used."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data.publish import publish
from forecasting.errors import InputError, UserError
from forecasting.failpoints import stop_here
from forecasting.forecast import Forecast, ScenarioSet
from forecasting.scheme.in_force import plan_from_dict, plan_to_dict
from forecasting.scheme.plan import Plan
from optimization.evaluate import (
    KPI_NAMES,
    evaluate_plan,
    impact_table,
    member_impact,
    scenario_money,
)
from optimization.milp import InfeasibleError
from optimization.projection import project, term_break_even
from optimization.solve import Optimum, frontier, optimize, scenario_set, shadow_prices
from optimization.space import PlanSpace
from pipelines.conventions import PLAN_FILE, currency_of
from pipelines.report.infeasible import today_break_text
from pipelines.tracking import (
    PLAN_EXPERIMENT,
    config_hash,
    lineage,
    store_lock,
    use_experiment,
)

# plan.json's format: a folder of an older format is made again, not reused (2: the
# ranges of premium income and payouts; 3: the figures before settlement the plan's exact
# ones; 4: "currency", the money unit of every amount). The report reads every format: a
# plan without "currency" is in its forecast's (provenance), else in CNY.
PLAN_FORMAT = 4


@dataclass(frozen=True)
class OptimizeResult:
    run_id: str
    optimum: Optimum
    status_quo: Plan
    document: dict
    shadow: pd.DataFrame
    frontier: pd.DataFrame


def load_forecast(directory: Path | None, run_id: str | None) -> Forecast:
    """A Forecast from a `ciplan forecast` folder, or from the artifacts of its run."""
    if (directory is None) == (run_id is None):
        raise UserError("give exactly one of --forecast DIR or --forecast-run RUN_ID")
    if directory is not None:
        return Forecast.load(directory)
    import mlflow
    from mlflow.exceptions import MlflowException

    with store_lock():
        use_experiment(PLAN_EXPERIMENT)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="forecast", dst_path=tmp)
            except MlflowException:
                raise UserError(f"no forecast artifacts in MLflow run {run_id!r}") from None
            return Forecast.load(local)


def status_quo_of(forecast: Forecast, space: PlanSpace) -> Plan:
    """The plan in force the forecast recorded, at the space's fixed premium if it has one."""
    recorded = forecast.provenance.get("plan_in_force")
    if not recorded:
        raise InputError(f"the forecast of {forecast.year} records no plan in force; "
                         "optimising needs today's plan to compare against")
    plan = plan_from_dict("forecast plan_in_force", recorded)
    if space.premium.fixed is not None:
        plan = plan.with_(premium_per_capita=float(space.premium.fixed))
    return plan


def plan_inputs(document: dict) -> dict:
    """What a plan folder came from, for its manifest: the format of plan.json, the
    forecast (run and content hash), the plan space, the objective and proposal, and its
    own run (None if infeasible)."""
    prov = document.get("provenance", {})
    return {"plan_format": PLAN_FORMAT,
            "forecast_run": prov.get("forecast_run"), "forecast_hash": prov.get("forecast_hash"),
            "space_hash": document.get("space_hash"), "objective": document.get("objective"),
            "proposal": document.get("proposal"), "plan_run": document.get("run_id")}


def plan_terms(plan: Plan) -> dict[str, float | str]:
    """Plan terms as flat MLflow params with the same names in every run."""
    out = {"premium_per_capita": plan.premium_per_capita, "deductible": plan.deductible,
           "cap": "none" if plan.cap is None else plan.cap,
           "band_edges": "/".join(f"{e:g}" for e in plan.band_edges)}
    out |= {f"ratio_{k + 1}": r for k, r in enumerate(plan.ratios)}
    return out


def impact_bands(status_quo: Plan) -> tuple[float, ...]:
    """Annual-cost bands of the member-impact table: today's deductible, band edges and
    the cost at which today's cap binds (where the catastrophic cases start)."""
    x_cap = status_quo.capped_cost()
    return tuple(sorted({status_quo.deductible, *status_quo.band_edges,
                         *([x_cap] if np.isfinite(x_cap) else [])}))


def frontier_floors(space: PlanSpace, points: int) -> np.ndarray:
    """Effective-ratio floors of the frontier: 5 points below today's floor to 10 above."""
    c = space.constraints
    return np.linspace(max(c.effective_ratio_floor - 0.05, 0), c.effective_ratio_floor + 0.10,
                       points)


def run_optimize(forecast: Forecast, space: PlanSpace, objective: str, out: Path,
                 solver: str | None = None, frontier_points: int = 25, seed: int = 0,
                 scenarios: ScenarioSet | None = None, proposal: str | None = None
                 ) -> OptimizeResult:
    """Solve, evaluate, explain; write plan.json, shadow_prices.csv, frontier.csv,
    member_impact.csv; all inside the plan's MLflow run (opened before the solve, so its
    duration is the solve's)."""
    status_quo = status_quo_of(forecast, space)
    if scenarios is None:
        scenarios = scenario_set(forecast, space, status_quo, seed)
    with plan_run(forecast, space, objective, proposal) as run_id:
        opt = optimize(forecast, space, status_quo, objective, solver, scenarios)
        shadow = shadow_prices(opt, forecast, space, status_quo, scenarios)
        front = (frontier(forecast, space, status_quo, frontier_floors(space, frontier_points))
                 if frontier_points else pd.DataFrame())
        before = evaluate_plan(status_quo, forecast, space.costs, scenarios,
                               levels=space.report.cost_levels,
                               cvar_level=space.risk.cvar_level, terms=space.contract.terms())
        bands = impact_bands(status_quo)
        impact = impact_table(member_impact(opt.plan, status_quo, forecast, bands), bands,
                              forecast.spec.label)
        terms = opt.terms or space.contract.terms()
        term = project(forecast, opt.plan, space, terms, space.costs.disposable_income,
                       n=space.risk.scenarios, seed=seed, scenarios=scenarios)
        before_term = project(forecast, status_quo, space, space.contract.terms(),
                              space.costs.disposable_income, n=space.risk.scenarios, seed=seed,
                              scenarios=scenarios)
        document = {
            "objective": objective, "year": forecast.year, "proposal": proposal,
            "currency": currency_of(forecast.provenance),
            "keep_benefits": opt.keep_benefits,
            "space_hash": config_hash(space.model_dump(mode="json")),
            "plan": plan_to_dict(opt.plan),
            "kpis": opt.kpis.as_dict() | {"ranges": money_ranges(opt.plan, forecast, space,
                                                                 scenarios)},
            "status_quo": {"plan": plan_to_dict(status_quo),
                           "kpis": before.as_dict() | {"ranges": money_ranges(
                               status_quo, forecast, space, scenarios)}},
            "solver": {"name": opt.solver, "status": opt.status, "proved": opt.proved,
                       "method": opt.method, "plans_priced": opt.plans_priced, "gap": opt.gap,
                       "seconds": opt.seconds, "tolerance": space.solver.tolerance,
                       "time_limit": space.solver.time_limit, "mip_gap": space.solver.mip_gap,
                       "search_expected_loss": opt.search_loss},
            # what the negotiator must hear beside the plan, the rules today's plan itself
            # breaks among them (in words here, as data in "today_breaks" for the report)
            "notes": [*opt.notes, *(today_break_text(b, "en", currency_of(
                forecast.provenance), proposal) for b in opt.today_breaks)],
            "today_breaks": list(opt.today_breaks),
            "contract": terms.model_dump(mode="json"),
            "term": term.years.to_dict(orient="records"),
            "term_break_even_premium": term_break_even(term.years, space),
            "status_quo_term": before_term.years.to_dict(orient="records"),
            "shadow_prices": shadow.to_dict(orient="records"),
            "member_impact": impact.to_dict(orient="records"),
            "provenance": forecast.provenance,
            "space": space.model_dump(mode="json"),
            "run_id": run_id,
        }
        with store_lock():
            _log(document, {"shadow_prices.csv": shadow, "frontier.csv": front,
                            "member_impact.csv": impact, "term.csv": term.years,
                            "settlement.parquet": term.scenarios}, opt, objective, space, out)
    return OptimizeResult(run_id, opt, status_quo, document, shadow, front)


def money_ranges(plan: Plan, forecast: Forecast, space: PlanSpace,
                 scenarios: ScenarioSet) -> dict[str, list[float]]:
    """The 5 % and 95 % ends of premium income (the insured count varies by scenario)
    and of payouts over the scenarios the loss range comes from."""
    payouts, income, _ = scenario_money(plan, forecast, space.costs, scenarios)
    return {"premium_income": [float(v) for v in np.percentile(income, [5, 95])],
            "payouts": [float(v) for v in np.percentile(payouts, [5, 95])]}


def run_name(objective: str, proposal: str | None) -> str:
    """A plan run's name: A-min-loss, B-break-even, ... or plan-<objective>."""
    return f"{proposal}-{objective}" if proposal else f"plan-{objective}"


def plan_tags(provenance: dict, space: PlanSpace, objective: str,
              proposal: str) -> dict[str, str]:
    """Tags of a plan run: lineage, the forecast run and model versions it used (from the
    forecast's provenance), the objective, the proposal (A, B, C, baseline or none) and
    the money unit of its amounts (`currency`: metrics such as `paid_less_cny` keep their
    names across portfolios, so that runs line up, and are in this unit)."""
    tags = lineage(str(provenance.get("data_fingerprint", "unknown")),
                   space.model_dump(mode="json"))
    tags |= {"forecast_run": str(provenance.get("forecast_run", "none")),
             "objective": objective, "proposal": proposal,
             "currency": currency_of(provenance)}
    return tags | {f"version_{k}": str(v) for k, v in
                   provenance.get("model_versions", {}).items()}


@contextlib.contextmanager
def plan_run(forecast: Forecast, space: PlanSpace, objective: str,
             proposal: str | None) -> Iterator[str]:
    """A `plan-optimization` run open for the whole solve (the store lock is held only to
    start and end it, not while solving); its id. An infeasible proposal ends FAILED with
    the reason as tag `infeasible`, any other error FAILED too, an interrupt KILLED."""
    import mlflow

    tags = plan_tags(forecast.provenance, space, objective, proposal or "none")
    with store_lock():
        use_experiment(PLAN_EXPERIMENT)
        run = mlflow.start_run(run_name=run_name(objective, proposal), tags=tags)
    try:
        yield run.info.run_id
    except BaseException as exc:
        with store_lock():
            if isinstance(exc, InfeasibleError):
                mlflow.set_tag("infeasible", str(exc)[:5000])
            mlflow.end_run("FAILED" if isinstance(exc, Exception) else "KILLED")
        raise
    with store_lock():
        mlflow.end_run()


def log_baseline(document: dict, provenance: dict, space: PlanSpace) -> str:
    """A `baseline` run for today's plan on the same forecast (tag proposal=baseline), with
    the params and metrics of the proposals' runs, so the compare view lines today up
    beside them; reused when a finished one for this forecast and config exists. Its id.
    The forecast enters by its provenance only (Forecast.provenance, or
    Forecast.load_provenance of its folder), so a re-run need not load the forecast."""
    import mlflow

    use_experiment(PLAN_EXPERIMENT)
    tags = plan_tags(provenance, space, "today", "baseline")
    found = mlflow.search_runs(
        experiment_names=[PLAN_EXPERIMENT], output_format="list",
        filter_string=(f"tags.proposal = 'baseline' and tags.forecast_run = "
                       f"'{tags['forecast_run']}' and tags.config_hash = "
                       f"'{tags['config_hash']}' and attributes.status = 'FINISHED'"))
    if found:
        return found[0].info.run_id
    sq = document["status_quo"]
    kpis = sq["kpis"]
    params = (plan_terms(plan_from_dict("status_quo", sq["plan"])) | space.contract.terms()
              .words() | {"objective": "today", "solver": "none"})
    settled = {k: v for k, v in (kpis.get("settlement") or {}).items()
               if k.endswith("_after") or k.startswith("fund_")}
    metrics = ({k: float(kpis[k]) for k in KPI_NAMES} | settled
               | {f"payout_at_{float(x):.0f}": float(v) for x, v in kpis["payout_at"].items()}
               | {"paid_less_claimants": 0.0, "paid_less_cny": 0.0})
    with mlflow.start_run(run_name="baseline", tags=tags) as run:
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if k not in params})
    return run.info.run_id


def run_metrics(opt: Optimum, impact: pd.DataFrame) -> dict[str, float]:
    """The metrics of a plan run: its KPIs, after settlement, the payout at each cost level
    (payout_at_50000 ...) and who is paid less than today (claimants a year, and
    `paid_less_cny` in the plans' money unit, the run's tag `currency`: the name stays, so
    that runs of every portfolio line up), so the compare view shows a cut in anyone's
    benefit."""
    settled = {k: v for k, v in (opt.kpis.settlement or {}).items()
               if k.endswith("_after") or k.startswith("fund_")}
    at = {f"payout_at_{float(x):.0f}": float(v) for x, v in opt.kpis.payout_at.items()}
    bands = impact[impact["by"] == "cost_band"] if len(impact) else impact
    less = {"paid_less_claimants": float(bands["lose"].sum()) if len(bands) else 0.0,
            "paid_less_cny": float(-bands["change"].clip(upper=0).sum()) if len(bands)
            else 0.0}
    return opt.kpis.metrics() | settled | at | less | {"solve_seconds": opt.seconds}


def _log(document: dict, tables: dict[str, pd.DataFrame], opt: Optimum,
         objective: str, space: PlanSpace, out: Path) -> None:
    """Write the plan folder atomically and log it, params and metrics to the active
    plan run."""
    import mlflow

    stop_here(f"propose:{document['proposal'] or objective}")
    with publish(Path(out), "plan", plan_inputs(document)) as tmp:
        (tmp / PLAN_FILE).write_text(json.dumps(document, indent=2, default=str),
                                     encoding="utf-8")
        for name, table in tables.items():
            if name.endswith(".parquet"):
                table.to_parquet(tmp / name, index=False)
            else:
                table.to_csv(tmp / name, index=False)
    mlflow.log_artifacts(str(out), artifact_path="plan")
    terms = opt.terms or space.contract.terms()
    params = plan_terms(opt.plan) | terms.words() | {"objective": objective,
                                                      "solver": opt.solver}
    mlflow.log_params(params)
    mlflow.log_metrics({k: v for k, v in run_metrics(opt, tables["member_impact.csv"])
                        .items() if k not in params})
