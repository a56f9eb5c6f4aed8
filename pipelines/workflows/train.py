"""`ciplan train`: backtest every candidate model, log each as a nested MLflow run, register
the champions (best out of sample) as `claim-frequency` and `claim-severity` @champion.

The aliases move only after the train run has FINISHED, and each registered version names
its train run, so a forecast can refuse a pair that a kill left half moved."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.data.cohorts import CohortSpec
from forecasting.data.dataset import Dataset
from forecasting.errors import UserError
from forecasting.models.backtesting import METRICS, backtest, summarise
from forecasting.models.claims import ClaimsModel
from forecasting.models.completion import as_known
from forecasting.models.diagnostics import layer_fit, scale_free
from forecasting.models.warnings import collected
from pipelines.model_files import key_levels
from pipelines.tracking import lineage, store_lock
from pipelines.worker import Worker
from pipelines.workflows.candidates import (
    BASELINE,
    DATA_CHECKS_TAG,
    data_checks,
    development_of,
    frequency_candidates,
    severity_candidates,
    train_config_of,
)
from pipelines.workflows.train_log import (
    CandidateLog,
    Champion,
    Figures,
    ModelLog,
    TrainEnd,
    TrainStart,
    train_logger,
)

# how each kind's champion is chosen: lowest robust backtest score of this metric (median of
# the absolute value over the years with enough held-out claimants)
SELECT_BY = {"frequency": "poisson_deviance", "severity": "layer_error"}
# severity first: its champion's model is logged (by the helper process) while the
# frequency candidates are fitted, and logging a frequency candidate is the quicker tail
LOG_ORDER = ("severity", "frequency")
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


def train(ds: Dataset, progress=None, logger: Worker | None = None) -> TrainResult:
    """Backtest and fit every candidate, log them, register and alias the champions.
    `logger` is a helper from `train_logger`, started before the data were read (one is
    started now if not given)."""
    check_trainable(ds)
    with store_lock(), (logger or train_logger()) as logger:
        return _train(ds, progress, logger)


def check_trainable(ds: Dataset) -> None:
    """Refuse data a training cannot backtest (fewer than two years), before anything is
    written: no store folder, lock file or run."""
    if len(ds.cells.years) < 2:
        raise UserError(f"{ds.path}: training needs at least two years for the backtest; "
                        f"got {ds.cells.years}")


def _train(ds: Dataset, progress, logger: Worker) -> TrainResult:
    todo = candidates(ds)
    task = progress.add_task("Training", total=len(todo) + 1) if progress else None
    tags = lineage(ds.fingerprint, train_config(ds)) | {
        DATA_CHECKS_TAG: data_checks(ds.options, ds.config)}
    logger.send(_train_start(ds, tags))
    fitted, champions, shared = {}, {}, {}
    sends = Sends(lambda c, final: logger.send(Figures(c.name, list(_figures(c.kind, final,
                                                                           ds)))),
                  lambda f: logger.send(_candidate_log(f, ds, tags)))
    with collected() as said:
        for kind in LOG_ORDER:
            done = _fit_candidates(ds, [c for c in todo if c.kind == kind], shared, progress,
                                   task, sends)
            champions[kind] = _champion({f.candidate.name: f.score for f in done}, kind)
            logger.send(Champion(kind, champions[kind]))
            fitted |= {f.candidate.name: f for f in done}
    fitted = [fitted[c.name] for c in todo]
    scores = {}
    for f in fitted:
        scores.setdefault(f.candidate.kind, {})[f.candidate.name] = f.score
    left_out = sorted({y for f in fitted for y in f.left_out})
    logger.send(TrainEnd({"backtest_years_left_out": ",".join(map(str, left_out))}, said))
    run_id, versions = logger.finish()
    if progress:
        progress.advance(task)
    return TrainResult(run_id, {k: champions[k] for k in SELECT_BY}, versions,
                       {f.candidate.name: f.backtest for f in fitted}, scores, left_out, said)


@dataclass(frozen=True)
class Fitted:
    """A candidate backtested and fitted on every year."""

    candidate: Candidate
    model: ClaimsModel
    backtest: pd.DataFrame
    score: float           # the robust score its champion is chosen on
    left_out: tuple[int, ...]  # backtest years with too few claimants


@dataclass(frozen=True)
class Sends:
    """What `_fit_candidates` hands on, and when: `fitted(candidate, model)` once the
    candidate is fitted on every year (its plots need nothing more: the helper draws them
    while this process backtests), `backtested(Fitted)` once its backtest is done."""

    fitted: Callable[[Candidate, ClaimsModel], None]
    backtested: Callable[[Fitted], None]


def _fit_candidates(ds: Dataset, todo: list[Candidate], shared: dict, progress, task,
                    sends: Sends) -> list[Fitted]:
    """Fit and backtest every candidate (fits kept in `shared` where candidates agree),
    handing each on (`sends`) as soon as it is fitted, and again once backtested. With
    as-of data each backtest origin trains on the data as of its negotiation date."""
    cells = ds.cells
    known = as_known(ds) if cells.as_of is not None else None
    out = []
    for cand in todo:
        if progress:
            progress.update(task, description=f"{cand.kind}: {cand.name}")
        final = _copy(cand.model).fit(cells, shared)
        sends.fitted(cand, final)
        table = backtest(cells, ds.scheme, lambda c=cand: _copy(c.model), shared=shared,
                         known=known)
        score, skipped = summarise(table, SELECT_BY[cand.kind],
                                   ds.config.models.min_backtest_claimants)
        out.append(Fitted(cand, final, table, score, tuple(skipped)))
        sends.backtested(out[-1])
        if progress:
            progress.advance(task)
    return out


def _train_start(ds: Dataset, tags: dict[str, str]) -> TrainStart:
    cells = ds.cells
    params = {"years": ",".join(map(str, cells.years)), "n_cells": len(cells.table),
              "reported_above": cells.reported_above, "data": str(ds.path)}
    if cells.as_of is not None:
        params["backtest_as_of"] = ds.config.development.negotiation_date
    return TrainStart(tags, params, {"cells.csv": cells.table.to_csv(index=False)},
                      cells.as_of.isoformat() if cells.as_of is not None else None,
                      cells.completion)


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


def _candidate_log(f: Fitted, ds: Dataset, tags: dict[str, str]) -> CandidateLog:
    """What a candidate's nested run holds besides its plots (sent before, as `Figures`):
    params, backtest metrics (mean and per year), diagnostics, and its model (logged if
    it becomes a champion: a losing candidate is refitted from its params when wanted)."""
    cand, table, final = f.candidate, f.backtest, f.model
    est = final.freq_ if cand.kind == "frequency" else final.sev_
    params = {f"{cand.kind}.{k}": v for k, v in est.get_params().items()}
    metrics = [(f"backtest_{metric}", float(table[metric].mean()), 0) for metric in METRICS]
    metrics += [(f"backtest_{metric}_by_year", float(row[metric]), int(row["year"]))
                for metric in METRICS for _, row in table.iterrows()]
    metrics.append((f"score_{SELECT_BY[cand.kind]}", f.score, 0))
    texts = {"backtest.csv": table.to_csv(index=False)}
    if cand.kind == "frequency":
        params |= _fitted_settings(est, texts)
    else:
        params |= _severity_diagnostics(final, ds, texts)
    return CandidateLog(cand.kind, cand.name, {**tags, "kind": cand.kind,
                                               "candidate": cand.name},
                        params, metrics, texts, _model_log(cand.kind, final, ds))


def _model_log(kind: str, final: ClaimsModel, ds: Dataset) -> ModelLog:
    """The estimator of a candidate and what its signature is inferred from: the schema,
    not the data, so a few rows suffice."""
    cells = ds.cells
    est = final.freq_ if kind == "frequency" else final.sev_
    frame = final._frequency_rows(cells) if kind == "frequency" else cells.claimants
    example = frame.head(SIGNATURE_ROWS)
    return ModelLog(est, _model_frame(example, cells.spec), est.predict(example),
                    key_levels(_model_frame(cells.table, cells.spec)))


def _fitted_settings(est, texts: dict[str, str]) -> dict[str, object]:
    """What cross-validation and scaling chose (knots, band width, GBM leaves), as params;
    its scores go to cv_scores.json in `texts`."""
    chosen = {k: getattr(est, k) for k in ("n_knots_", "age_band_width_",
                                          "min_samples_leaf_", "max_leaf_nodes_", "constant_")
              if getattr(est, k, None) is not None}
    if getattr(est, "cv_scores_", None):
        texts["cv_scores.json"] = json.dumps({str(k): v for k, v in est.cv_scores_.items()},
                                             indent=2)
    return {f"fitted.{k}": v for k, v in chosen.items()}


def _severity_diagnostics(final: ClaimsModel, ds: Dataset,
                          texts: dict[str, str]) -> dict[str, object]:
    """The splice profile and the layer fit table (into `texts`), and which rows the fit
    used (params)."""
    sev, cells = final.sev_, ds.cells
    texts["splice_profile.csv"] = pd.DataFrame(sev.splice_profile_).to_csv(index=False)
    texts["layer_fit.csv"] = layer_fit(sev, cells.claimants, _layer_levels(final, ds),
                                       cells.reported_above).to_csv(index=False)
    return {"fitted.splice_point": sev.base_.threshold, "fitted.joint_rows": sev.joint_rows_,
            "fitted.claimants": len(cells.claimants),
            "fitted.reported_share": sev.reported_share_}


def _layer_levels(final: ClaimsModel, ds: Dataset) -> list[float]:
    """The layer levels of the diagnostics: the latest plan's, else the data's quantiles."""
    latest = ds.scheme.latest_plan(max(ds.cells.years))
    fc = final.forecast(max(ds.cells.years) + 1)
    return fc.layer_levels(latest[1] if latest else None)


def _figures(kind: str, final: ClaimsModel, ds: Dataset):
    """The candidate's plots as (file, `pipelines.report.plots` function, its arguments):
    computed here, drawn by the process that logs them."""
    cells, currency = ds.cells, ds.config.data.currency
    t = cells.table
    if kind == "frequency":
        pred = final.predict_frequency(t)
        by = t.assign(pred=pred * t["exposure"]).groupby("age_band")[
            ["claimants", "exposure", "pred"]].sum()
        by["observed"], by["predicted"] = by["claimants"] / by["exposure"], by["pred"] / by[
            "exposure"]
        yield "frequency_by_age.png", "observed_vs_predicted", (
            by, "observed", "predicted", "Claimants per member-year by age band", "frequency")
        yield "lorenz.png", "lorenz", (pred, t["exposure"].to_numpy(),
                                           t["claimants"].to_numpy(float), "Lorenz curve")
        return
    sev, c = final.sev_, cells.claimants
    by = c.assign(pred=sev.predict(c)).groupby("age_band")[["cost", "pred"]].mean()
    yield "severity_by_age.png", "observed_vs_predicted", (
        by, "cost", "pred", "Mean annual cost per claimant by age band", currency)
    x0 = scale_free(sev, c)
    trunc = cells.reported_above / float(np.median(sev.scale(c)))
    yield "mean_excess.png", "mean_excess", (
        x0, sev.base_, "Mean excess of scale-free costs", f"{currency}, scale-free")
    yield "qq.png", "qq", (x0, sev.base_, "QQ plot of scale-free costs",
                               f"{currency}, scale-free", trunc)


def mean_scores(result: TrainResult) -> pd.DataFrame:
    """Backtest means of every candidate and its robust score (the median the champion
    is chosen on), for printing."""
    rows = {name: t[list(METRICS)].mean() for name, t in result.backtests.items()}
    frame = pd.DataFrame(rows).T.astype(float).replace([np.inf, -np.inf], np.nan)
    frame["score"] = [next(s[name] for s in result.scores.values() if name in s)
                      for name in frame.index]
    return frame
