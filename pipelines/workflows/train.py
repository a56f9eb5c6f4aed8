"""`ciplan train`: backtest every candidate model, log each as a nested MLflow run, register
the champions (best out of sample) as `claim-frequency` and `claim-severity` @champion.

The aliases move only after the train run has FINISHED, and each registered version names
its train run, so a forecast can refuse a pair that a kill left half moved."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecasting.data.cells import Cells
from forecasting.data.cohorts import CohortSpec
from forecasting.data.dataset import Dataset
from forecasting.errors import UserError
from forecasting.failpoints import stop_here
from forecasting.models.backtesting import METRICS, backtest, summarise
from forecasting.models.claims import ClaimsModel
from forecasting.models.completion import as_known
from forecasting.models.diagnostics import layer_fit, scale_free
from forecasting.models.warnings import collected
from pipelines.model_files import HASH_TAG, key_levels, log_estimator
from pipelines.report import plots
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    FREQUENCY_MODEL,
    SEVERITY_MODEL,
    TRAIN_RUN_TAG,
    connect,
    lineage,
    move_champions,
    store_lock,
    use_experiment,
)
from pipelines.workflows.candidates import (
    BASELINE,
    DATA_CHECKS_TAG,
    data_checks,
    development_of,
    frequency_candidates,
    severity_candidates,
    train_config_of,
)

# how each kind's champion is chosen: lowest robust backtest score of this metric (median of
# the absolute value over the years with enough held-out claimants)
SELECT_BY = {"frequency": "poisson_deviance", "severity": "layer_error"}
REQUIREMENTS = ["scikit-learn", "numpy", "pandas", "scipy", "ciplan"]
SIGNATURE_ROWS = 5  # rows the model signature is inferred from (it records column types)


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
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # kind -> name -> score
    left_out: list[int] = field(default_factory=list)  # backtest years with too few claimants
    warnings: list[str] = field(default_factory=list)   # what the models said while fitting


def train_config(ds: Dataset) -> dict:
    """What a training depends on besides the data (see `train_config_of`), from the
    Dataset's cells."""
    return train_config_of(ds.cells.spec, ds.cells.reported_above, ds.cells.rule,
                           ds.config.models, development_of(ds.options, ds.config))


def candidates(ds: Dataset) -> list[Candidate]:
    """Frequency candidates share the default severity and vice versa."""
    models = ds.config.models
    common = {"frequency_rows": models.frequency_rows, "credibility_k": models.credibility_k}
    default_sev = next(iter(severity_candidates(models).values()))
    out = [Candidate("frequency", n, ClaimsModel(**p, **common, severity_params=default_sev))
           for n, p in frequency_candidates(ds.cells.spec, models).items()]
    out += [Candidate("severity", n, ClaimsModel(
        **frequency_candidates(ds.cells.spec, models)[BASELINE], **common, severity_params=p))
            for n, p in severity_candidates(models).items()]
    return out


def _model_frame(frame: pd.DataFrame, spec: CohortSpec) -> pd.DataFrame:
    """Cell keys as plain columns (MLflow signatures have no categorical type)."""
    keys = [c for c in ("year", "age_band", *spec.keys) if c in frame]
    return frame[keys].astype({k: str for k in spec.keys if k != "special_group"})


def train(ds: Dataset, progress=None) -> TrainResult:
    """Backtest and fit every candidate, log them, register and alias the champions."""
    with store_lock():
        return _train(ds, progress)


def _train(ds: Dataset, progress) -> TrainResult:
    cells = ds.cells
    if len(cells.years) < 2:
        raise UserError(f"{ds.path}: training needs at least two years for the backtest; "
                          f"got {cells.years}")
    todo = candidates(ds)
    task = progress.add_task("Training", total=len(todo) + 1) if progress else None
    with collected() as said:
        fitted = _fit_candidates(ds, todo, progress, task)
        result = _log_and_register(ds, fitted, progress, task)
    if said:
        with store_lock():
            connect().MlflowClient().log_text(result.run_id, "\n".join(said), "warnings.txt")
    move_champions(result.versions)  # only now that the run has FINISHED
    return replace(result, warnings=said)


@dataclass(frozen=True)
class Fitted:
    """A candidate backtested and fitted on every year, before anything is logged."""

    candidate: Candidate
    model: ClaimsModel
    backtest: pd.DataFrame
    score: float           # the robust score its champion is chosen on
    left_out: tuple[int, ...]  # backtest years with too few claimants


def _fit_candidates(ds: Dataset, todo: list[Candidate], progress, task) -> list[Fitted]:
    """Backtest and fit every candidate (fits shared where candidates agree). With as-of
    data each backtest origin trains on the data as of its negotiation date."""
    cells, shared = ds.cells, {}
    known = as_known(ds) if cells.as_of is not None else None
    out = []
    for cand in todo:
        if progress:
            progress.update(task, description=f"{cand.kind}: {cand.name}")
        table = backtest(cells, ds.scheme, lambda c=cand: _copy(c.model), shared=shared,
                         known=known)
        final = _copy(cand.model).fit(cells, shared)
        score, skipped = summarise(table, SELECT_BY[cand.kind],
                                   ds.config.models.min_backtest_claimants)
        out.append(Fitted(cand, final, table, score, tuple(skipped)))
        if progress:
            progress.advance(task, 0.8)
    return out


def _log_and_register(ds: Dataset, fitted: list[Fitted], progress, task) -> TrainResult:
    """Log the train run with a nested run per candidate, log the champions' models and
    register them (the aliases are moved by the caller, after the run has FINISHED)."""
    import mlflow
    from mlflow.models import infer_signature

    cells = ds.cells
    use_experiment(FORECAST_EXPERIMENT)
    # the data settings beyond the fingerprint: a re-run that finds this run on them may
    # skip reading the data whole (run_all)
    tags = lineage(ds.fingerprint, train_config(ds)) | {
        DATA_CHECKS_TAG: data_checks(ds.options, ds.config)}
    runs, scores = {}, {}
    left_out = sorted({y for f in fitted for y in f.left_out})
    with mlflow.start_run(run_name="train", tags=tags) as parent:
        mlflow.log_params({"years": ",".join(map(str, cells.years)), "n_cells": len(cells.table),
                           "reported_above": cells.reported_above, "data": str(ds.path)})
        mlflow.log_text(cells.table.to_csv(index=False), "cells.csv")
        if cells.as_of is not None:
            log_development(cells)
            mlflow.log_param("backtest_as_of", ds.config.development.negotiation_date)
        for f in fitted:
            cand = f.candidate
            with mlflow.start_run(run_name=f"{cand.kind}-{cand.name}", nested=True,
                                  tags={**tags, "kind": cand.kind,
                                        "candidate": cand.name}) as child:
                _log_candidate(cand, f.model, f.backtest, ds)
                mlflow.log_metric(f"score_{SELECT_BY[cand.kind]}", f.score)
            stop_here("train:candidate")
            runs[cand.name] = (cand, f.model, child.info.run_id)
            scores.setdefault(cand.kind, {})[cand.name] = f.score
            if progress:
                progress.advance(task, 0.2)
        champions = {kind: _champion(s, kind) for kind, s in scores.items()}
        tags |= {TRAIN_RUN_TAG: parent.info.run_id}
        versions = {name: _register(_log_model(*runs[champions[kind]], ds, infer_signature),
                                    name, tags)
                    for kind, name in (("frequency", FREQUENCY_MODEL),
                                       ("severity", SEVERITY_MODEL))}
        mlflow.set_tags({f"champion_{k}": v for k, v in champions.items()}
                        | {f"version_{k}": v for k, v in versions.items()}
                        | {"backtest_years_left_out": ",".join(map(str, left_out))})
        if progress:
            progress.advance(task)
    return TrainResult(parent.info.run_id, champions, versions,
                       {f.candidate.name: f.backtest for f in fitted}, scores, left_out)


def log_development(cells: Cells) -> None:
    """State on the train run the as-of date of as-of cells and how each year was
    completed (params: as_of, method; metrics per service year as steps: reported,
    completed, factor and the interval's ends)."""
    import mlflow
    from mlflow.entities import Metric

    mlflow.log_param("as_of", cells.as_of.isoformat())
    if not cells.completion:
        mlflow.log_param("development", "none (fewer than two service years)")
        return
    mlflow.log_params({"development": cells.completion["method"],
                       "development_level": cells.completion["level"]})
    now = int(time.time() * 1000)
    metrics = [Metric(f"development_{k}", float(y[k]), now, int(y["year"]))
               for y in cells.completion["years"]
               for k in ("reported", "completed", "factor", "low", "high")]
    mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)
    mlflow.log_dict(cells.completion, "development.json")


def _champion(scores: dict[str, float], kind: str) -> str:
    """The candidate with the lowest robust score (NaN scores never win); for frequency
    the one-hot band baseline unless another beats it."""
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    if kind == "frequency" and (not finite or BASELINE not in finite):
        return BASELINE
    return min(finite or scores, key=(finite or scores).get)


def _copy(model: ClaimsModel) -> ClaimsModel:
    """A fresh copy to fit; training scores and logs the claimant frequency only (the
    forecast fits the claim counts beside the champion), so no claim-count twin."""
    return ClaimsModel(model.frequency, model.credibility_k, dict(model.frequency_params),
                       dict(model.severity_params), model.frequency_rows, claim_counts=False)


def _log_candidate(cand: Candidate, final: ClaimsModel, table: pd.DataFrame,
                   ds: Dataset) -> None:
    """Params, backtest metrics (mean and per year), plots and diagnostics of a candidate.
    Its model is logged only if it becomes a champion (`_log_model`): a losing candidate
    is refitted from its params when wanted, and logging seven models cost a second."""
    import mlflow
    from mlflow.entities import Metric

    est = final.freq_ if cand.kind == "frequency" else final.sev_
    mlflow.log_params({f"{cand.kind}.{k}": v for k, v in est.get_params().items()})
    now = int(time.time() * 1000)  # ms, MLflow's timestamps
    metrics = [Metric(f"backtest_{metric}", float(table[metric].mean()), now, 0)
               for metric in METRICS]
    metrics += [Metric(f"backtest_{metric}_by_year", float(row[metric]), now, int(row["year"]))
                for metric in METRICS for _, row in table.iterrows()]
    # one batch, one store transaction, instead of one per value
    mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)
    mlflow.log_text(table.to_csv(index=False), "backtest.csv")
    if cand.kind == "frequency":
        _log_fitted_settings(est)
    else:
        _log_severity_diagnostics(final, ds)
    for fig_name, fig in _figures(cand.kind, final, ds):
        mlflow.log_figure(fig, fig_name)
        plots.close(fig)


def _log_model(cand: Candidate, final: ClaimsModel, run_id: str, ds: Dataset,
               infer_signature) -> tuple[str, str]:
    """Log a champion's model into its candidate run (resumed, so the registered version's
    run is the one holding its backtest); its URI and the SHA-256 of its file."""
    import mlflow

    cells = ds.cells
    est = final.freq_ if cand.kind == "frequency" else final.sev_
    frame = final._frequency_rows(cells) if cand.kind == "frequency" else cells.claimants
    example = frame.head(SIGNATURE_ROWS)  # the schema, not the data: a few rows suffice
    with mlflow.start_run(run_id=run_id, nested=True), warnings.catch_warnings():
        # MLflow's hint that integer columns cannot hold missing values: the cohort cells
        # never miss a value (the data contract refuses them), so it is noise on the console
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        return log_estimator(est, infer_signature(_model_frame(example, cells.spec),
                                                  est.predict(example)), REQUIREMENTS,
                             key_levels(_model_frame(cells.table, cells.spec)))


def _log_fitted_settings(est) -> None:
    """What cross-validation and scaling chose (knots, band width, GBM leaves)."""
    import mlflow

    chosen = {k: getattr(est, k) for k in ("n_knots_", "age_band_width_",
                                          "min_samples_leaf_", "max_leaf_nodes_", "constant_")
              if getattr(est, k, None) is not None}
    if chosen:
        mlflow.log_params({f"fitted.{k}": v for k, v in chosen.items()})
    if getattr(est, "cv_scores_", None):
        mlflow.log_dict({str(k): v for k, v in est.cv_scores_.items()}, "cv_scores.json")


def _log_severity_diagnostics(final: ClaimsModel, ds: Dataset) -> None:
    """The splice profile, the layer fit table, and which rows the fit used."""
    import mlflow

    sev, cells = final.sev_, ds.cells
    mlflow.log_text(pd.DataFrame(sev.splice_profile_).to_csv(index=False),
                    "splice_profile.csv")
    mlflow.log_params({"fitted.splice_point": sev.base_.threshold,
                       "fitted.joint_rows": sev.joint_rows_,
                       "fitted.claimants": len(cells.claimants),
                       "fitted.reported_share": sev.reported_share_})
    levels = _layer_levels(final, ds)
    fit = layer_fit(sev, cells.claimants, levels, cells.reported_above)
    mlflow.log_text(fit.to_csv(index=False), "layer_fit.csv")


def _layer_levels(final: ClaimsModel, ds: Dataset) -> list[float]:
    """The layer levels of the diagnostics: the latest plan's, else the data's quantiles."""
    latest = ds.scheme.latest_plan(max(ds.cells.years))
    fc = final.forecast(max(ds.cells.years) + 1)
    return fc.layer_levels(latest[1] if latest else None)



def _figures(kind: str, final: ClaimsModel, ds: Dataset):
    cells, currency = ds.cells, ds.config.data.currency
    t = cells.table
    if kind == "frequency":
        pred = final.predict_frequency(t)
        by = t.assign(pred=pred * t["exposure"]).groupby("age_band")[
            ["claimants", "exposure", "pred"]].sum()
        by["observed"], by["predicted"] = by["claimants"] / by["exposure"], by["pred"] / by[
            "exposure"]
        yield "frequency_by_age.png", plots.observed_vs_predicted(
            by, "observed", "predicted", "Claimants per member-year by age band",
            "frequency")
        yield "lorenz.png", plots.lorenz(pred, t["exposure"].to_numpy(),
                                         t["claimants"].to_numpy(float), "Lorenz curve")
        return
    sev, c = final.sev_, cells.claimants
    by = c.assign(pred=sev.predict(c)).groupby("age_band")[["cost", "pred"]].mean()
    yield "severity_by_age.png", plots.observed_vs_predicted(
        by, "cost", "pred", "Mean annual cost per claimant by age band", currency)
    x0 = scale_free(sev, c)
    trunc = cells.reported_above / float(np.median(sev.scale(c)))
    yield "mean_excess.png", plots.mean_excess(
        x0, sev.base_, "Mean excess of scale-free costs", f"{currency}, scale-free")
    yield "qq.png", plots.qq(x0, sev.base_, "QQ plot of scale-free costs",
                             f"{currency}, scale-free", trunc)


def _register(logged: tuple[str, str], name: str, tags: dict) -> str:
    """Register a logged model (URI, SHA-256 of its file) under `name`; its version. The
    version's tags name the train run and the file's hash, which loading checks."""
    import mlflow
    from mlflow.utils.logging_utils import disable_logging, enable_logging

    model_uri, digest = logged
    disable_logging()  # MLflow's "Successfully registered" lines: ciplan says it once
    try:
        version = mlflow.register_model(model_uri, name, tags=tags | {HASH_TAG: digest})
    finally:
        enable_logging()
    return str(version.version)


def mean_scores(result: TrainResult) -> pd.DataFrame:
    """Backtest means of every candidate and its robust score (the median the champion
    is chosen on), for printing."""
    rows = {name: t[list(METRICS)].mean() for name, t in result.backtests.items()}
    frame = pd.DataFrame(rows).T.astype(float).replace([np.inf, -np.inf], np.nan)
    frame["score"] = [next(s[name] for s in result.scores.values() if name in s)
                      for name in frame.index]
    return frame
