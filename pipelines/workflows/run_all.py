"""`ciplan run`: data -> train -> forecast next year -> the standard proposals -> report.

Re-running reuses what has not changed: a finished train run with the same data
fingerprint and config (looked for and, if missing, made under one store lock, so two
runs at once train once), a forecast folder made from the same data and model versions,
and plan folders made from the same forecast content and plan space. A folder is reused
only when its manifest verifies and the run that wrote it FINISHED. Each reuse is said
aloud.

A re-run with nothing changed does not read the data whole. Given the data's DataKey (the
files checked up to their tables and fingerprinted: `forecasting.data.dataset.data_key`),
the cells are built only when something must be computed, or when no finished train run
shows that these very data passed the checks with the same settings (then bad data still
stop the run before anything is written). The train run gives the data's years. The
forecast is read whole only when a plan must be made: the plans, the baseline and the
report need its provenance only. The modules that compute (the models, the report) are
imported where they are used, for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.data.dataset import DataKey, Dataset
from forecasting.data.publish import check_out, publish, reusable_inputs
from forecasting.errors import UserError
from forecasting.forecast import Forecast
from optimization.milp import InfeasibleError
from optimization.solve import scenario_set
from optimization.space import PlanSpace
from pipelines.conventions import PLAN_FILE, PROPOSALS, SUMMARY_FILE, currency_of
from pipelines.tracking import (
    FORECAST_EXPERIMENT,
    FREQUENCY_MODEL,
    MODELS,
    config_hash,
    connect,
    store_exists,
    store_lock,
    tracking_uri,
    use_experiment,
)
from pipelines.workflows.candidates import (
    DATA_CHECKS_TAG,
    data_checks,
    development_of,
    train_config_of,
)
from pipelines.workflows.propose import (
    log_baseline,
    plan_inputs,
    run_optimize,
    status_quo_of,
)


@dataclass
class RunSummary:
    out: Path
    report: Path
    train_run: str
    forecast_run: str
    plan_runs: dict[str, str]
    reused: list[str] = field(default_factory=list)
    # what the models said while fitting (the train run's, reused or not) and forecasting,
    # as `ciplan train` and `ciplan forecast` print them
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # proposal -> plan.json notes


def _say(say: Callable[[str], None] | None, text: str) -> None:
    if say:
        say(text)


def _key(ds: Dataset | DataKey) -> DataKey:
    return ds.key if isinstance(ds, Dataset) else ds


def _train_filter(key: DataKey) -> str:
    """The finished train runs on these data (fingerprint) and train config."""
    h = config_hash(train_config_of(key.spec, key.reported_above, key.rule,
                                    key.config.models, development_of(key.options, key.config)))
    return (f"tags.data_fingerprint = '{key.fingerprint}' and tags.config_hash = '{h}' and "
            "attributes.status = 'FINISHED' and attributes.run_name = 'train'")


def _latest_train_run(key: DataKey):
    """The latest finished train run on these data and config whose models were
    registered; None without one (or without a store). Only reads the store: it is also
    asked before the data are checked, when nothing may be written yet."""
    if not store_exists(tracking_uri(make=False)):
        return None
    with store_lock():
        client = connect().MlflowClient()
        experiment = client.get_experiment_by_name(FORECAST_EXPERIMENT)
        runs = [] if experiment is None else client.search_runs(
            [experiment.experiment_id], filter_string=_train_filter(key),
            order_by=["attributes.start_time DESC"])
    return next((r for r in runs if f"version_{FREQUENCY_MODEL}" in r.data.tags), None)


def find_train_run(ds: Dataset | DataKey) -> str | None:
    """The id of the latest finished train run on the same data and config, if its models
    exist."""
    run = _latest_train_run(_key(ds))
    return None if run is None else run.info.run_id


def _vouches(run, key: DataKey) -> bool:
    """Whether a train run on these data shows they passed the checks with the same
    settings (tag data_checks) and says their years: then a re-run need not read them."""
    return (run.data.tags.get(DATA_CHECKS_TAG) == data_checks(key.options, key.config)
            and bool(run.data.params.get("years")))


def _passed_before(key: DataKey) -> bool:
    """Whether the train run `find_train_run` would give vouches for the data (`_vouches`)."""
    run = _latest_train_run(key)
    return run is not None and _vouches(run, key)


def find_or_train(ds: Dataset | DataKey, say=None, progress=None,
                  load: Callable[[], Dataset] | None = None) -> tuple[str, bool]:
    """A finished train run for these data and config, made now if there is none; and
    whether it was reused. Under one store lock, so that two runs at once train once.
    Given a DataKey, `load` reads the data when they must be trained on."""
    with store_lock():
        run_id = find_train_run(ds)
        if run_id:
            _say(say, f"Reusing train run {run_id}: same data fingerprint and config.")
            return run_id, True
        _say(say, "Training the claim models (backtest, MLflow)…")
        from pipelines.workflows.train import train
        from pipelines.workflows.train_log import train_logger

        with train_logger() as logger:  # imports what it needs while the data are read
            if isinstance(ds, DataKey):
                if load is None:
                    raise TypeError("find_or_train needs `load` to train on a DataKey")
                ds = load()
            return train(ds, progress, logger).run_id, False


def _has_plan_in_force(ds: Dataset) -> None:
    """The proposals are weighed against today's plan: data without one (no scheme.toml,
    as `ciplan import` writes without --scheme) stop the run before it trains, not after."""
    year = max(ds.years) + 1
    if ds.scheme.latest_plan(year) is None:
        raise UserError(f"{ds.path}: no plan in force for {year} or before (scheme.toml "
                        "absent or without a [plan.YEAR]); expected today's plan to weigh "
                        "the proposals against: put scheme.toml beside the data "
                        "(`ciplan import --scheme`)")


class _Data:
    """A run's data: their key now, the Dataset when first needed (read once, and only if
    the data are still those the key was made from)."""

    def __init__(self, ds: Dataset | DataKey, load: Callable[[], Dataset] | None) -> None:
        if isinstance(ds, DataKey) and load is None:
            raise TypeError("run_all needs `load` with a DataKey")
        self.key = _key(ds)
        self.read = ds if isinstance(ds, Dataset) else None
        self._load = load

    def dataset(self) -> Dataset:
        if self.read is None:
            ds = self._load()
            if ds.fingerprint != self.key.fingerprint:  # changed since they were hashed
                raise UserError(f"{ds.path}: the data changed while ciplan ran; run again")
            self.read = ds
        return self.read


def train_warnings(client, run_id: str) -> list[str]:
    """The warnings a train run logged (warnings.txt: what the models said while fitting)."""
    if not any(f.path == "warnings.txt" for f in client.list_artifacts(run_id)):
        return []
    folder = client.download_artifacts(run_id, "warnings.txt")
    return Path(folder).read_text(encoding="utf-8").splitlines()


def forecast_warnings(fdir: Path) -> list[str]:
    """What the models said while forecasting, as the forecast's summary records it."""
    summary = json.loads((fdir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return [str(w) for w in summary.get("warnings", [])]


def _run_finished(run_id: str | None) -> bool:
    """Whether a run id names a FINISHED run of the store (None: a folder without run)."""
    if run_id is None:
        return True
    from mlflow.exceptions import MlflowException

    try:
        return connect().MlflowClient().get_run(run_id).info.status == "FINISHED"
    except MlflowException:
        return False


def _fresh_forecast(folder: Path, ds: Dataset | DataKey, year: int, versions: dict) -> bool:
    """A complete forecast folder of these data, year and model versions, in the money
    unit ciplan.toml names now (the forecast, the plans and the report carry it), whose
    run finished."""
    found = reusable_inputs(folder, "forecast")
    return (found is not None and found.get("data_fingerprint") == ds.fingerprint
            and found.get("year") == year and found.get("model_versions") == versions
            and Forecast.load_provenance(folder).get("currency") == ds.config.data.currency
            and _run_finished(found.get("forecast_run")))


def _fresh_plan(folder: Path, wanted: dict) -> bool:
    """A complete plan folder made from the same forecast content, plan space, objective
    and proposal (`wanted`, as plan_inputs gives them), whose run finished."""
    found = reusable_inputs(folder, "plan")
    return (found is not None and all(found.get(k) == v for k, v in wanted.items())
            and _run_finished(found.get("plan_run")))


def _fresh_report(folder: Path, plan_dirs: list[Path], lang: str) -> bool:
    """A complete report folder in `lang` made from exactly these plan folders (each
    complete, with the content hash and run the report's manifest names): writing it again
    would give the same pages, so a re-run with nothing changed does not."""
    found = reusable_inputs(folder, "report")
    if found is None or found.get("lang") != lang:
        return False
    wanted = {}
    for pdir in plan_dirs:
        plan = reusable_inputs(pdir, "plan")
        if plan is None:
            return False
        doc = _plan_doc(pdir)
        wanted[doc.get("proposal")] = {"content_hash": plan["content_hash"],
                                       "plan_run": doc.get("run_id")}
    return found.get("plans") == wanted


def run_outputs(out: Path) -> None:
    """Check before any work that `ciplan run` may write its folders under `out`."""
    check_out(Path(out) / "forecast", "forecast")
    for key in PROPOSALS:
        check_out(Path(out) / "plans" / key, "plan")
    check_out(Path(out) / "report", "report")


def run_all(ds: Dataset | DataKey, space: PlanSpace, out: Path, lang: str = "en",
            say: Callable[[str], None] | None = None, progress=None,
            load: Callable[[], Dataset] | None = None) -> RunSummary:
    """The whole job (see module doc). Returns where everything went. `ds` is the data
    read, or their DataKey with `load` to read them (called at most once, when needed)."""
    out = Path(out)
    data = _Data(ds, load)
    if data.read is None and not _passed_before(data.key):
        data.dataset()  # bad data stop the run here, before anything is written
    if data.read is not None:
        _has_plan_in_force(data.read)
    reused = []
    run_id, was_reused = find_or_train(data.read or data.key, say, progress, data.dataset)
    if was_reused:
        reused.append(f"train run {run_id} (same data fingerprint and config)")
    with store_lock():
        use_experiment(FORECAST_EXPERIMENT)
        client = connect().MlflowClient()
        run = client.get_run(run_id)
        said = train_warnings(client, run_id)
    versions = {n: run.data.tags[f"version_{n}"] for n in MODELS}
    if data.read is None and not _vouches(run, data.key):  # another run than looked at
        data.dataset()
    # the years of the data, or of the train run on these very data (which records them)
    years = (data.read.years if data.read is not None
             else [int(y) for y in run.data.params["years"].split(",")])
    year = max(years) + 1
    fdir = out / "forecast"
    if _fresh_forecast(fdir, data.key, year, versions):
        reused.append(f"forecast {fdir}")
        _say(say, f"Reusing the forecast of {year} in {fdir}.")
    else:
        _say(say, f"Forecasting {year}…")
        from pipelines.workflows.forecast_year import run_forecast

        run_forecast(data.dataset(), year, fdir, run_id=run_id)
    # what the plans, the baseline and the report need of the forecast; the forecast itself
    # is read only for a plan that must be made
    provenance = Forecast.load_provenance(fdir)
    forecast_run = provenance["forecast_run"]
    said += [w for w in forecast_warnings(fdir) if w not in said]
    fc = None
    space_hash = config_hash(space.model_dump(mode="json"))
    plans, plan_runs, scenarios, notes = [], {}, None, {}
    for key, objective in PROPOSALS.items():
        pdir = out / "plans" / key
        plans.append(pdir)
        wanted = plan_inputs({"provenance": provenance, "space_hash": space_hash,
                              "objective": objective, "proposal": key})
        del wanted["plan_run"]  # whichever run made it
        if _fresh_plan(pdir, wanted):
            reused.append(f"proposal {key} {pdir}")
            _say(say, f"Reusing proposal {key} ({objective}) in {pdir}.")
        else:
            _say(say, f"Optimising proposal {key} ({objective})…")
            if fc is None:
                fc = Forecast.load(fdir)
            if scenarios is None:
                scenarios = scenario_set(fc, space, status_quo_of(fc, space))
            try:
                run_optimize(fc, space, objective, pdir, frontier_points=25 if key == "A"
                             else 0, scenarios=scenarios, proposal=key)
            except InfeasibleError as exc:
                _write_infeasible(pdir, wanted, year, exc, currency_of(provenance))
        doc = _plan_doc(pdir)
        if doc.get("run_id"):
            plan_runs[key] = doc["run_id"]
        if doc.get("notes"):
            notes[key] = [str(n) for n in doc["notes"]]
    today = next((d for d in map(_plan_doc, plans) if "status_quo" in d), None)
    if today is not None:
        with store_lock():
            plan_runs_and_today = plan_runs | {"baseline": log_baseline(today, provenance,
                                                                        space)}
    else:
        plan_runs_and_today = plan_runs
    report = out / "report"
    if _fresh_report(report, plans, lang):
        reused.append(f"report {report}")
        _say(say, f"Reusing the report in {report}.")
    else:
        _say(say, "Writing the report…")
        from pipelines.report.document import write_report

        report = write_report(plans, report, lang)
    log_report(report, plan_runs_and_today, lang)
    return RunSummary(out, report / "report.html", run_id, forecast_run, plan_runs, reused,
                      said, notes)


def _write_infeasible(pdir: Path, wanted: dict, year: int, why: InfeasibleError,
                      currency: str) -> None:
    """A plan folder that says why no plan meets the proposal's constraints (in words and
    as data, for the report in any language), in the forecast's money unit."""
    doc = {"proposal": wanted["proposal"], "objective": wanted["objective"], "year": year,
           "currency": currency,
           "infeasible": str(why), "infeasible_changes": why.changes,
           "space_hash": wanted["space_hash"],
           "provenance": {"forecast_run": wanted["forecast_run"],
                          "forecast_hash": wanted["forecast_hash"]}}
    with publish(pdir, "plan", {**wanted, "plan_run": None}) as tmp:
        (tmp / PLAN_FILE).write_text(json.dumps(doc, indent=2), encoding="utf-8")


def runs_not_in_store(run_ids: list[str]) -> list[str]:
    """The run ids the current store does not hold (plans made against another store)."""
    from mlflow.exceptions import MlflowException

    client = connect().MlflowClient()
    missing = []
    for run_id in run_ids:
        try:
            client.get_run(run_id)
        except MlflowException:
            missing.append(run_id)
    return missing


def _plan_doc(pdir: Path) -> dict:
    return json.loads((pdir / PLAN_FILE).read_text())


def log_report(report_dir: Path, plan_runs: dict[str, str], lang: str) -> None:
    """Attach the report files to every optimisation run behind them, one report per
    language (`report/en/`, `report/zh/`: a Chinese report never replaces the English)."""
    if not plan_runs:
        return
    with store_lock():
        client = connect().MlflowClient()
        for run_id in plan_runs.values():
            client.log_artifacts(run_id, str(report_dir), artifact_path=f"report/{lang}")


