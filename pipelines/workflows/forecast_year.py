"""`ciplan forecast`: the registry's champion models + the data -> a Forecast of year T+1,
written as a table people read (forecast.csv / .parquet) beside the forecast itself
(forecast.json and Parquet tables, which `ciplan optimize` reads), published whole with a
manifest, and an MLflow run that records which model versions it used."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from forecasting.data.dataset import Dataset
from forecasting.data.publish import publish
from forecasting.errors import UserError
from forecasting.failpoints import stop_here
from forecasting.forecast import Forecast
from forecasting.models.claims import ClaimsModel, counts_like
from forecasting.models.completion import statement
from forecasting.models.warnings import collected
from forecasting.scheme.accounts import history
from forecasting.scheme.in_force import plan_to_dict
from forecasting.scheme.plan import Plan
from pipelines.conventions import SUMMARY_FILE
from pipelines.model_files import load_estimator
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    MODELS,
    TRAIN_RUN_TAG,
    champions,
    connect,
    finished,
    lineage,
    store_lock,
    use_experiment,
)


@dataclass(frozen=True)
class ForecastResult:
    run_id: str
    forecast: Forecast
    table: pd.DataFrame
    summary: dict


def _models(run_id: str | None):
    """Frequency and severity estimators: the registry champions (both of one finished
    train run), or those of a finished train run; loaded by `load_estimator`."""
    from mlflow.exceptions import MlflowException

    if run_id is None:
        used = champions()
    else:
        mlflow = connect()
        try:
            tags = mlflow.MlflowClient().get_run(run_id).data.tags
        except MlflowException:
            raise UserError(f"no MLflow run {run_id!r} at {mlflow.get_tracking_uri()}") from None
        if any(f"version_{name}" not in tags for name in MODELS):
            raise UserError(f"run {run_id} is not a `ciplan train` run")
        finished(run_id, "train run")
        used = {name: tags[f"version_{name}"] for name in MODELS}
    freq, sev = (load_estimator(name, version) for name, version in used.items())
    return freq, sev, used


def _trained_as_of(used: dict[str, str]) -> str | None:
    """The as-of date the models' train run read its data on (None: complete data)."""
    import mlflow

    client = mlflow.MlflowClient()
    name, version = next(iter(used.items()))
    run = client.get_model_version(name, version).tags.get(TRAIN_RUN_TAG)
    return client.get_run(run).data.params.get("as_of") if run else None


def _check_as_of(ds: Dataset, used: dict[str, str]) -> None:
    """Warn when the models were trained on the data as of another date than the one the
    forecast reads them on (or on complete data, or the other way round)."""
    import warnings

    from forecasting.models.warnings import ModelWarning

    trained = _trained_as_of(used)
    now = ds.cells.as_of.isoformat() if ds.cells.as_of else None
    if trained != now:
        def said(date: str | None) -> str:
            return f"as of {date}" if date else "as complete"
        warnings.warn(ModelWarning(
            f"the models were trained on the data {said(trained)}, the forecast reads "
            f"them {said(now)}: pass the same --as-of to train and forecast"), stacklevel=2)


def _priced(ds: Dataset, cells, plan: Plan | None) -> dict:
    """What the forecast records of the scheme: the plan in force (the latest up to the
    year), the latest market and the past accounts, as far as the scheme has them."""
    out = {}
    if plan is not None:
        out["plan_in_force"] = plan_to_dict(plan)
    if ds.scheme.markets:
        out["market"] = asdict(ds.scheme.market(max(ds.scheme.markets)))
    if all(y in ds.scheme.plans and y in ds.scheme.markets for y in cells.years):
        out["history"] = history(cells, ds.scheme).to_dict(orient="records")
    return out


def backtest_of(versions: dict[str, str]) -> dict[str, dict[str, float]]:
    """Mean backtest metrics of the model versions used, read from their training runs."""
    import mlflow

    client = mlflow.MlflowClient()
    out = {}
    for name, version in versions.items():
        run_id = client.get_model_version(name, version).run_id
        metrics = client.get_run(run_id).data.metrics if run_id else {}
        out[name] = {k.removeprefix("backtest_"): v for k, v in metrics.items()
                     if k.startswith("backtest_") and not k.endswith("_by_year")}
    return out


def by_age(cells, fc: Forecast) -> pd.DataFrame:
    """Frequency and mean severity by age band: each past year observed, and the forecast."""
    t, c = cells.table, cells.claimants
    past = t.groupby(["year", "age_band"], as_index=False)[["claimants", "exposure"]].sum()
    sev = c.groupby(["year", "age_band"], as_index=False)["cost"].mean()
    past = past.merge(sev, on=["year", "age_band"], how="left")
    past["frequency"] = past["claimants"] / past["exposure"]
    past = past.rename(columns={"cost": "severity"}).assign(kind="observed")
    f = fc.cohorts.assign(cost=fc.cohorts["claimants"] * fc.cohorts["mean_severity"])
    fut = f.groupby("age_band", as_index=False)[["claimants", "exposure", "cost"]].sum()
    fut["frequency"] = fut["claimants"] / fut["exposure"]
    fut["severity"] = fut["cost"] / fut["claimants"]
    fut = fut.assign(year=fc.year, kind="forecast")
    cols = ["kind", "year", "age_band", "frequency", "severity"]
    return pd.concat([past[cols], fut[cols]], ignore_index=True)


def forecast_table(fc: Forecast, plan: Plan | None, scenarios: int, seed: int
                   ) -> tuple[pd.DataFrame, dict]:
    """Per cohort: insured, claimants, mean severity, layers (at the plan's cost levels,
    or at the data's quantiles without a plan; per reported claimant too under a
    reporting threshold) and, with a plan, the expected payout with its 90 % range. The
    scenarios cover every cost the plan's payout depends on, and each range holds its own
    expected value (forecasting.forecast.interval)."""
    parts = [fc.cohorts.reset_index(drop=True), fc.layer_table(plan)]
    if fc.reported_above > 0:
        parts.append(fc.layer_table(plan, per="reported"))
    table = pd.concat(parts, axis=1)
    summary = {"year": fc.year, "insured": fc.insured,
               "claimants": float(fc.cohorts["claimants"].sum()), "scenarios": scenarios,
               "reported_above": fc.reported_above}
    if "claims" in fc.cohorts:
        summary["claims"] = float(fc.cohorts["claims"].sum())
    if plan is None:
        return table, summary
    by_cohort, total = fc.payout_ranges(plan, scenarios, seed)
    table["payout_expected"] = by_cohort["expected"].to_numpy()
    table["payout_p05"], table["payout_p95"] = by_cohort["low"].to_numpy(), by_cohort[
        "high"].to_numpy()
    summary |= {"payout_expected": total["expected"], "payout_p05": total["low"],
                "payout_p95": total["high"], "scenario_mean": total["scenario_mean"]}
    return table, summary


def run_forecast(ds: Dataset, year: int, out: Path, run_id: str | None = None,
                 scenarios: int = 1000, seed: int = 0) -> ForecastResult:
    """Forecast `year` from the data before it with the champion (or a run's) models."""
    if year - 1 not in ds.years:
        raise UserError(f"{ds.path}: forecasting {year} needs the data of {year - 1}; "
                          f"the data cover {ds.years}")
    models = _models(run_id)  # first: a missing or refused model writes nothing
    with store_lock():
        return _run_forecast(ds, year, out, models, scenarios, seed)


def _run_forecast(ds: Dataset, year: int, out: Path, models, scenarios: int,
                  seed: int) -> ForecastResult:
    import mlflow

    use_experiment(FORECAST_EXPERIMENT)
    freq, sev, used = models
    cells = ds.cells.until(year - 1)
    latest = ds.scheme.latest_plan(year)
    plan = latest[1] if latest else None
    tags = lineage(ds.fingerprint, {"year": year, "scenarios": scenarios, "seed": seed})
    tags |= {f"version_{n}": v for n, v in used.items()}
    with collected() as said, mlflow.start_run(run_name=f"forecast-{year}", tags=tags) as run:
        _check_as_of(ds, used)
        fc = ClaimsModel().use(cells, freq, sev, counts_like(freq, cells)).forecast(
            year, {"forecast_run": run.info.run_id, "data_fingerprint": ds.fingerprint,
                   "model_versions": used, "currency": ds.config.data.currency,
                   **_priced(ds, cells, plan), "backtest": backtest_of(used)})
        fc.provenance["by_age"] = by_age(cells, fc).to_dict(orient="records")
        development = statement(cells)
        if development is not None:
            fc.provenance["development"] = development
        table, summary = forecast_table(fc, plan, scenarios, seed)
        summary |= {"forecast_run": run.info.run_id, "model_versions": used,
                    "data_fingerprint": ds.fingerprint, "currency": ds.config.data.currency,
                    "warnings": said, "development": development}
        inputs = fc.inputs() | {"scenarios": scenarios, "seed": seed}
        with publish(Path(out), "forecast", inputs) as tmp:
            table.to_csv(tmp / "forecast.csv", index=False)
            table.to_parquet(tmp / "forecast.parquet", index=False)
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
            fc.write(tmp)
            stop_here("forecast:write")
        mlflow.log_artifacts(str(out), artifact_path="forecast")
        mlflow.log_params({"year": year, "scenarios": scenarios, "seed": seed})
        mlflow.log_metrics({k: float(summary[k]) for k in
                            ("insured", "claimants", "payout_expected", "payout_p05",
                             "payout_p95") if k in summary})
    return ForecastResult(run.info.run_id, fc, table, summary)

