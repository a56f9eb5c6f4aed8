"""`ciplan train`: backtest every candidate model, log each as a nested MLflow run, register
the champions (best out of sample) as `claim-frequency` and `claim-severity` @champion.

The aliases move only after the train run has FINISHED, and each registered version names
its train run, so a forecast can refuse a pair that a kill left half moved."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.data.dataset import Dataset
from forecasting.errors import UserError
from forecasting.failpoints import stop_here
from forecasting.models.backtesting import METRICS, backtest
from forecasting.models.claims import ClaimsModel
from pipelines.model_files import HASH_TAG, MODEL_FORMAT, log_estimator
from pipelines.report import plots
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    FREQUENCY_MODEL,
    SEVERITY_MODEL,
    TRAIN_RUN_TAG,
    lineage,
    move_champions,
    store_lock,
    use_experiment,
)

FREQUENCY_CANDIDATES = {"poisson-glm": {"frequency": "glm"}, "poisson-gbm": {"frequency": "gbm"}}
SEVERITY_CANDIDATES = {"spliced-q95": {"tail_quantile": 0.95},
                       "spliced-q98": {"tail_quantile": 0.98}}
# how each kind's champion is chosen: lowest mean of this backtest metric (absolute value)
SELECT_BY = {"frequency": "poisson_deviance", "severity": "above_deductible_error"}
REQUIREMENTS = ["scikit-learn", "numpy", "pandas", "scipy", "ciplan"]


@dataclass(frozen=True)
class Candidate:
    kind: str
    name: str
    model: ClaimsModel


@dataclass(frozen=True)
class TrainResult:
    """What a training run chose, and where it is in MLflow."""

    run_id: str
    champions: dict[str, str]      # kind -> candidate name
    versions: dict[str, str]       # registered model name -> version
    backtests: dict[str, pd.DataFrame]


def train_config(cells) -> dict:
    """What a training depends on besides the data: equal configs may reuse a run. The
    model format is part of it: runs whose models cannot be loaded now are not reused."""
    return {"candidates": sorted(FREQUENCY_CANDIDATES) + sorted(SEVERITY_CANDIDATES),
            "spec": str(cells.spec), "reported_above": cells.reported_above,
            "model_format": MODEL_FORMAT}


def candidates() -> list[Candidate]:
    """Frequency candidates share the default severity and vice versa."""
    out = [Candidate("frequency", n, ClaimsModel(**p)) for n, p in FREQUENCY_CANDIDATES.items()]
    out += [Candidate("severity", n, ClaimsModel(severity_params=p))
            for n, p in SEVERITY_CANDIDATES.items()]
    return out


def _model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Cell keys as plain columns (MLflow signatures have no categorical type)."""
    keys = [c for c in ("year", "age_band", "sex", "residence", "special_group", "region")
            if c in frame]
    return frame[keys].astype({k: str for k in ("sex", "residence") if k in frame})


def train(ds: Dataset, progress=None) -> TrainResult:
    """Backtest and fit every candidate, log them, register and alias the champions."""
    with store_lock():
        return _train(ds, progress)


def _train(ds: Dataset, progress) -> TrainResult:
    import mlflow
    from mlflow.models import infer_signature

    cells = ds.cells
    if len(cells.years) < 2:
        raise UserError(f"{ds.path}: training needs at least two years for the backtest; "
                          f"got {cells.years}")
    use_experiment(FORECAST_EXPERIMENT)
    tags = lineage(ds.fingerprint, train_config(cells))
    todo = candidates()
    task = progress.add_task("Training", total=len(todo) + 1) if progress else None
    scores, logged, tables = {}, {}, {}
    with mlflow.start_run(run_name="train", tags=tags) as parent:
        mlflow.log_params({"years": ",".join(map(str, cells.years)), "n_cells": len(cells.table),
                           "reported_above": cells.reported_above, "data": str(ds.path)})
        mlflow.log_text(cells.table.to_csv(index=False), "cells.csv")
        for cand in todo:
            if progress:
                progress.update(task, description=f"{cand.kind}: {cand.name}")
            table = backtest(cells, ds.scheme, lambda c=cand: _copy(c.model))
            final = _copy(cand.model).fit(cells)
            with mlflow.start_run(run_name=f"{cand.kind}-{cand.name}", nested=True,
                                  tags={**tags, "kind": cand.kind, "candidate": cand.name}):
                logged[cand.name] = _log_candidate(cand, final, table, cells, infer_signature)
            stop_here("train:candidate")
            tables[cand.name] = table
            scores.setdefault(cand.kind, {})[cand.name] = float(
                table[SELECT_BY[cand.kind]].abs().mean())
            if progress:
                progress.advance(task)
        champions = {kind: min(s, key=s.get) for kind, s in scores.items()}
        tags |= {TRAIN_RUN_TAG: parent.info.run_id}
        versions = {
            FREQUENCY_MODEL: _register(logged[champions["frequency"]], FREQUENCY_MODEL, tags),
            SEVERITY_MODEL: _register(logged[champions["severity"]], SEVERITY_MODEL, tags),
        }
        mlflow.set_tags({f"champion_{k}": v for k, v in champions.items()}
                        | {f"version_{k}": v for k, v in versions.items()})
        if progress:
            progress.advance(task)
    move_champions(versions)  # only now that the run has FINISHED
    return TrainResult(parent.info.run_id, champions, versions, tables)


def _copy(model: ClaimsModel) -> ClaimsModel:
    return ClaimsModel(model.frequency, model.credibility_k, dict(model.frequency_params),
                       dict(model.severity_params))


def _log_candidate(cand: Candidate, final: ClaimsModel, table: pd.DataFrame, cells,
                   infer_signature) -> tuple[str, str]:
    """Params, backtest metrics (mean and per year), plots and the model; its URI and the
    SHA-256 of its file."""
    import mlflow

    est = final.freq_ if cand.kind == "frequency" else final.sev_
    mlflow.log_params({f"{cand.kind}.{k}": v for k, v in est.get_params().items()})
    for metric in METRICS:
        mlflow.log_metric(f"backtest_{metric}", float(table[metric].mean()))
        for _, row in table.iterrows():
            mlflow.log_metric(f"backtest_{metric}_by_year", float(row[metric]),
                              step=int(row["year"]))
    mlflow.log_text(table.to_csv(index=False), "backtest.csv")
    frame = cells.table if cand.kind == "frequency" else cells.claimants
    X = _model_frame(frame)
    for fig_name, fig in _figures(cand.kind, est, cells):
        mlflow.log_figure(fig, fig_name)
        plots.close(fig)
    return log_estimator(est, infer_signature(X, est.predict(frame)), REQUIREMENTS)


def _figures(kind: str, est, cells):
    t = cells.table
    if kind == "frequency":
        pred = est.predict(t)
        by = t.assign(pred=pred * t["exposure"]).groupby("age_band")[
            ["claimants", "exposure", "pred"]].sum()
        by["observed"], by["predicted"] = by["claimants"] / by["exposure"], by["pred"] / by[
            "exposure"]
        yield "frequency_by_age.png", plots.observed_vs_predicted(
            by, "observed", "predicted", "Claimants per member-year by age band",
            "frequency")
        yield "lorenz.png", plots.lorenz(pred, t["exposure"].to_numpy(),
                                         t["claimants"].to_numpy(float), "Lorenz curve")
    else:
        c = cells.claimants
        by = c.assign(pred=est.predict(c)).groupby("age_band")[["cost", "pred"]].mean()
        yield "severity_by_age.png", plots.observed_vs_predicted(
            by, "cost", "pred", "Mean annual cost per claimant by age band", "CNY")


def _register(logged: tuple[str, str], name: str, tags: dict) -> str:
    """Register a logged model (URI, SHA-256 of its file) under `name`; its version. The
    version's tags name the train run and the file's hash, which loading checks."""
    import mlflow

    model_uri, digest = logged
    version = mlflow.register_model(model_uri, name, tags=tags | {HASH_TAG: digest})
    return str(version.version)


def mean_scores(result: TrainResult) -> pd.DataFrame:
    """Backtest means of every candidate, for printing."""
    rows = {name: t[list(METRICS)].mean() for name, t in result.backtests.items()}
    return pd.DataFrame(rows).T.astype(float).replace([np.inf, -np.inf], np.nan)
