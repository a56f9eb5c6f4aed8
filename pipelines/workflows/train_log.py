"""What a training writes to MLflow, done by a helper process (pipelines.worker) while the
training process fits the next candidate: the train run, a nested run per candidate, the
champions' models, their registration and aliases.

The training process sends plain records (TrainStart; per candidate its Figures once it
is fitted, then its CandidateLog once backtested; a Champion per kind; TrainEnd) and
computes everything in them; this side only draws the figures and writes. The figures
come first so that this side draws them while the other backtests: drawing is most of
what it does, and it would otherwise wait idle for the first backtest.
The aliases move only after the train run has FINISHED."""

from __future__ import annotations

import io
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecasting.failpoints import stop_here
from pipelines.process import importing
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    FREQUENCY_MODEL,
    SEVERITY_MODEL,
    TRAIN_RUN_TAG,
    lock_held_for_me,
    move_champions,
    own_connections,
    use_experiment,
)
from pipelines.worker import Worker

REQUIREMENTS = ["scikit-learn", "numpy", "pandas", "scipy", "ciplan"]
REGISTERED = {"frequency": FREQUENCY_MODEL, "severity": SEVERITY_MODEL}


@dataclass(frozen=True)
class TrainStart:
    """The train run: its tags, params and text artifacts (file -> text), and with as-of
    data how each service year was completed (`Cells.completion`, as_of ISO date)."""

    tags: dict[str, str]
    params: dict[str, object]
    texts: dict[str, str]
    as_of: str | None = None
    completion: dict | None = None


@dataclass(frozen=True)
class ModelLog:
    """A fitted estimator with what its MLflow signature is inferred from (a few rows of
    its input and its output on them) and the category levels it was trained on."""

    estimator: object
    example: pd.DataFrame
    prediction: object
    levels: dict[str, list[str]]


@dataclass(frozen=True)
class Figures:
    """The plots of candidate `name`, for its nested run: (file, the name of a
    `pipelines.report.plots` function, its arguments), drawn here as they come."""

    name: str
    figures: list[tuple[str, str, tuple]]


@dataclass(frozen=True)
class CandidateLog:
    """One candidate's nested run, with the plots its Figures brought. `metrics` are
    (key, value, step); `model` is logged if it is a champion."""

    kind: str
    name: str
    tags: dict[str, str]
    params: dict[str, object]
    metrics: list[tuple[str, float, int]]
    texts: dict[str, str]
    model: ModelLog


@dataclass(frozen=True)
class Champion:
    """The champion of a kind (all its candidates sent): its model is logged and
    registered now (the alias moves at the end)."""

    kind: str
    name: str


@dataclass(frozen=True)
class TrainEnd:
    """The train run's last tags and the warnings of the fits (logged as warnings.txt
    when there are any)."""

    tags: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def log_train(messages: Iterator) -> tuple[str, dict[str, str]]:
    """Write a training to MLflow from its records; the train run's id and the registered
    versions (model name -> version), aliased @champion once the run has FINISHED."""
    _import_ahead()
    own_connections()
    start = next(messages)  # sent under the store lock, held until this returns
    with lock_held_for_me():
        return _log_train(start, messages)


def train_logger() -> Worker:
    """The helper process that writes a training (start it before reading the data: it
    imports what it needs meanwhile, and writes nothing before the first record)."""
    return Worker(log_train)


def _log_train(start: TrainStart, messages: Iterator) -> tuple[str, dict[str, str]]:
    import mlflow

    use_experiment(FORECAST_EXPERIMENT)
    with mlflow.start_run(run_name="train", tags=start.tags) as parent:
        mlflow.log_params(start.params)
        for name, text in start.texts.items():
            mlflow.log_text(text, name)
        if start.as_of is not None:
            log_development(start.as_of, start.completion)
        drawn, logged, champions, versions = {}, {}, {}, {}
        for message in messages:
            if isinstance(message, TrainEnd):
                end = message
                break
            if isinstance(message, Figures):
                drawn[message.name] = _draw(message.figures)
                continue
            if isinstance(message, Champion):
                record, run_id = logged[message.name]
                champions[message.kind] = message.name
                versions[message.kind] = _register(
                    _log_model(record.model, run_id), REGISTERED[message.kind],
                    start.tags | {TRAIN_RUN_TAG: parent.info.run_id})
                continue
            logged[message.name] = (message, _log_candidate(message,
                                                            drawn.pop(message.name, {})))
            stop_here("train:candidate")
        versions = {name: versions[kind] for kind, name in REGISTERED.items()}
        mlflow.set_tags(end.tags | {f"champion_{k}": v for k, v in champions.items()}
                        | {f"version_{k}": v for k, v in versions.items()})
        if end.warnings:
            mlflow.log_text("\n".join(end.warnings), "warnings.txt")
    move_champions(versions)  # only now that the run has FINISHED
    return parent.info.run_id, versions


def _import_ahead() -> None:
    """What the writing needs, imported while the training process reads the data (and
    before anything is written: bad data must leave no store behind), and MLflow's map
    of installed packages from the cache (`pipelines.package_map`)."""
    # MLflow's schema module imports PySpark whenever it is installed (0.15 s): the
    # helper (this runs nowhere else) logs scikit-learn models only, so PySpark is
    # absent for it
    sys.modules.setdefault("pyspark", None)
    with importing():
        import mlflow.sklearn
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        import skops.io  # noqa: F401
        from mlflow.models import infer_signature  # noqa: F401

        from pipelines.package_map import prime_package_map
        from pipelines.report import plots  # noqa: F401

    prime_package_map()


def log_development(as_of: str, completion: dict | None) -> None:
    """State on the active run the as-of date of as-of cells and how each year was
    completed (params: as_of, method; metrics per service year as steps: reported,
    completed, factor and the interval's ends)."""
    import mlflow

    mlflow.log_param("as_of", as_of)
    if not completion:
        mlflow.log_param("development", "none (fewer than two service years)")
        return
    mlflow.log_params({"development": completion["method"],
                       "development_level": completion["level"]})
    _log_metrics([(f"development_{k}", float(y[k]), int(y["year"]))
                  for y in completion["years"]
                  for k in ("reported", "completed", "factor", "low", "high")])
    mlflow.log_dict(completion, "development.json")


def _draw(figures: list[tuple[str, str, tuple]]) -> dict[str, bytes]:
    """The PNG file of each figure (file name -> bytes), as MLflow's log_figure saves it."""
    from pipelines.report import plots

    out = {}
    for name, draw, args in figures:
        fig = getattr(plots, draw)(*args)
        with io.BytesIO() as buf:
            fig.savefig(buf, format="png")
            out[name] = buf.getvalue()
        plots.close(fig)
    return out


def _log_candidate(record: CandidateLog, pngs: dict[str, bytes]) -> str:
    """A candidate's nested run (params, metrics in one batch, then its texts and drawn
    figures as files in one call); its id."""
    import mlflow

    with mlflow.start_run(run_name=f"{record.kind}-{record.name}", nested=True,
                          tags=record.tags) as child:
        mlflow.log_params(record.params)
        _log_metrics(record.metrics)
        files = {name: text.encode("utf-8") for name, text in record.texts.items()} | pngs
        with tempfile.TemporaryDirectory() as folder:
            for name, data in files.items():
                (Path(folder) / name).write_bytes(data)
            mlflow.log_artifacts(folder)
    return child.info.run_id


def _log_metrics(metrics: list[tuple[str, float, int]]) -> None:
    """(key, value, step) metrics on the active run in one batch: one store transaction
    instead of one per value."""
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)  # ms, MLflow's timestamps
    mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=[
        Metric(key, value, now, step) for key, value, step in metrics])


def _log_model(model: ModelLog, run_id: str) -> tuple[str, str]:
    """Log a champion's model into its candidate run (resumed, so the registered version's
    run is the one holding its backtest); its URI and the SHA-256 of its file."""
    import mlflow
    from mlflow.models import infer_signature

    from pipelines.model_files import log_estimator

    with mlflow.start_run(run_id=run_id, nested=True), warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values: the cohort cells
        # never miss a value (the data contract refuses them), so it is noise on the console
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        return log_estimator(model.estimator, infer_signature(model.example, model.prediction),
                             REQUIREMENTS, model.levels)


def _register(logged: tuple[str, str], name: str, tags: dict) -> str:
    """Register a logged model (URI, SHA-256 of its file) under `name`; its version. The
    version's tags name the train run and the file's hash, which loading checks."""
    import mlflow
    from mlflow.utils.logging_utils import disable_logging, enable_logging

    from pipelines.model_files import HASH_TAG

    model_uri, digest = logged
    disable_logging()  # MLflow's "Successfully registered" lines: ciplan says it once
    try:
        version = mlflow.register_model(model_uri, name, tags=tags | {HASH_TAG: digest})
    finally:
        enable_logging()
    return str(version.version)
