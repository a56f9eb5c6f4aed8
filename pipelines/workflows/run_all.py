"""`ciplan run`: data -> train -> forecast next year -> the standard proposals -> report.

Re-running reuses what has not changed: a finished train run with the same data
fingerprint and config, a forecast folder made from the same data and model versions, and
plan folders made from the same forecast and plan space. Each reuse is said aloud.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.data.dataset import Dataset
from forecasting.forecast import Forecast
from optimization.milp import InfeasibleError
from optimization.solve import scenario_set
from optimization.space import PlanSpace
from pipelines.conventions import PLAN_FILE, PROPOSALS
from pipelines.report.document import write_report
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    FREQUENCY_MODEL,
    SEVERITY_MODEL,
    config_hash,
    store_lock,
    tracking_uri,
    use_experiment,
)
from pipelines.workflows.forecast_year import run_forecast
from pipelines.workflows.propose import run_optimize, status_quo_of
from pipelines.workflows.train import train, train_config


@dataclass
class RunSummary:
    out: Path
    report: Path
    train_run: str
    forecast_run: str
    plan_runs: dict[str, str]
    reused: list[str] = field(default_factory=list)


def _say(say: Callable[[str], None] | None, text: str) -> None:
    if say:
        say(text)


def find_train_run(ds: Dataset) -> str | None:
    """The latest finished train run on the same data and config, if its models exist."""
    import mlflow

    with store_lock():
        exp_id = use_experiment(FORECAST_EXPERIMENT)
        h = config_hash(train_config(ds))
        runs = mlflow.search_runs(
            [exp_id], output_format="list", order_by=["attributes.start_time DESC"],
            filter_string=(f"tags.data_fingerprint = '{ds.fingerprint}' and "
                           f"tags.config_hash = '{h}' and attributes.status = 'FINISHED' "
                           "and attributes.run_name = 'train'"))
    for run in runs:
        if f"version_{FREQUENCY_MODEL}" in run.data.tags:
            return run.info.run_id
    return None


def _train_versions(run_id: str) -> dict[str, str]:
    import mlflow

    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    return {n: tags[f"version_{n}"] for n in (FREQUENCY_MODEL, SEVERITY_MODEL)}


def _fresh_forecast(folder: Path, ds: Dataset, year: int, versions: dict) -> bool:
    summary = folder / "summary.json"
    if not summary.exists():
        return False
    s = json.loads(summary.read_text())
    return (s.get("data_fingerprint") == ds.fingerprint and s.get("year") == year
            and s.get("model_versions") == versions
            and (folder / "forecast.joblib").exists())


def _fresh_plan(folder: Path, forecast_run: str, space_hash: str, objective: str) -> bool:
    path = folder / PLAN_FILE
    if not path.exists():
        return False
    doc = json.loads(path.read_text())
    return (doc.get("provenance", {}).get("forecast_run") == forecast_run
            and doc.get("space_hash") == space_hash and doc.get("objective") == objective)


def proposal_space(key: str, space: PlanSpace) -> PlanSpace:
    """A at today's premium; B finds its premium (today's benefits); C chooses the premium
    within the bureau's budget, the plan with the least expected loss whose CVaR95 stays
    within the risk budget."""
    if key == "C":
        return space.with_free_premium()
    return space


def run_all(ds: Dataset, space: PlanSpace, out: Path, lang: str = "en",
            say: Callable[[str], None] | None = None, progress=None) -> RunSummary:
    """The whole job (see module doc). Returns where everything went."""
    out = Path(out)
    year = max(ds.years) + 1
    reused = []
    run_id = find_train_run(ds)
    if run_id:
        reused.append(f"train run {run_id} (same data fingerprint and config)")
        _say(say, f"Reusing train run {run_id}: same data fingerprint and config.")
    else:
        _say(say, "Training the claim models (backtest, MLflow)…")
        run_id = train(ds, progress).run_id
    with store_lock():
        use_experiment(FORECAST_EXPERIMENT)
        versions = _train_versions(run_id)
    fdir = out / "forecast"
    if _fresh_forecast(fdir, ds, year, versions):
        reused.append(f"forecast {fdir}")
        _say(say, f"Reusing the forecast of {year} in {fdir}.")
    else:
        _say(say, f"Forecasting {year}…")
        run_forecast(ds, year, fdir, run_id=run_id)
    fc = Forecast.load(fdir)
    forecast_run = fc.provenance["forecast_run"]
    plans, plan_runs, scenarios = [], {}, None
    for key, objective in PROPOSALS.items():
        pspace = proposal_space(key, space)
        pdir = out / "plans" / key
        plans.append(pdir)
        h = config_hash(pspace.model_dump(mode="json"))
        if _fresh_plan(pdir, forecast_run, h, objective):
            reused.append(f"proposal {key} {pdir}")
            _say(say, f"Reusing proposal {key} ({objective}) in {pdir}.")
        else:
            _say(say, f"Optimising proposal {key} ({objective})…")
            if scenarios is None:
                scenarios = scenario_set(fc, space, status_quo_of(fc, space))
            try:
                run_optimize(fc, pspace, objective, pdir, frontier_points=25 if key == "A"
                             else 0, scenarios=scenarios, proposal=key)
            except InfeasibleError as exc:
                _write_infeasible(pdir, key, objective, year, forecast_run, h, str(exc))
        doc = json.loads((pdir / PLAN_FILE).read_text())
        if doc.get("run_id"):
            plan_runs[key] = doc["run_id"]
    _say(say, "Writing the report…")
    report = write_report(plans, out / "report", lang)
    log_report(report, plan_runs)
    return RunSummary(out, report / "report.html", run_id, forecast_run, plan_runs, reused)


def _write_infeasible(pdir: Path, key: str, objective: str, year: int, forecast_run: str,
                      space_hash: str, why: str) -> None:
    from forecasting.data.io import atomic_dir

    doc = {"proposal": key, "objective": objective, "year": year, "infeasible": why,
           "space_hash": space_hash, "provenance": {"forecast_run": forecast_run}}
    with atomic_dir(pdir) as tmp:
        (tmp / PLAN_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")


def log_report(report_dir: Path, plan_runs: dict[str, str]) -> None:
    """Attach the report files to every optimisation run behind them."""
    import mlflow

    if not plan_runs:
        return
    with store_lock():
        mlflow.set_tracking_uri(tracking_uri())
        client = mlflow.MlflowClient()
        for run_id in plan_runs.values():
            client.log_artifacts(run_id, str(report_dir), artifact_path="report")


