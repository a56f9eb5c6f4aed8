"""MLflow conventions: where runs go, experiment names, lineage tags on every run, the
champions, and keeping a store honest after crashes.

Tracking URI: $MLFLOW_TRACKING_URI, else SQLite at mlruns/mlflow.db with artifacts under
mlruns/artifacts (MLflow 3 refuses the file store by default). Every use of the store goes
through `connect`: a damaged SQLite store is a one-line error and MLflow's own INFO lines
stay off stderr; before a process writes, runs left RUNNING by a killed ciplan process are
marked KILLED.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from forecasting.data.publish import owner_dead, owner_id
from forecasting.errors import UserError
from forecasting.failpoints import stop_here
from pipelines.conventions import cache_root
from pipelines.process import importing

FORECAST_EXPERIMENT = "claims-forecast"
PLAN_EXPERIMENT = "plan-optimization"
FREQUENCY_MODEL = "claim-frequency"
SEVERITY_MODEL = "claim-severity"
CHAMPION = "champion"
MODELS = (FREQUENCY_MODEL, SEVERITY_MODEL)
MLRUNS = Path("mlruns")
# experiments are model development, not GenAI: the experiment-kind tag MLflow 3's UI
# read before its sidebar switch (3.17 reads the switch, or the address: `runs_page`)
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
UI_WORKFLOW = "machine_learning"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `make ui` serves the UI
PROCESS_TAG = "ciplan.process"  # the process that ran a run (publish.owner_id)
TRAIN_RUN_TAG = "train_run"     # on a model version: the train run that made it


def tracking_uri(make: bool = True) -> str:
    """$MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns (made unless `make` is
    False: a look that must write nothing yet). Every use of MLflow starts here, so it is
    also where MLflow's usage telemetry is turned off (no network on the machines this
    runs on) and its INFO lines are kept off stderr, unless the user set either."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:  # read when mlflow is first imported ...
        os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # ... or set on its logger
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    if make:
        MLRUNS.mkdir(exist_ok=True)
    return f"sqlite:///{(MLRUNS / 'mlflow.db').resolve()}"


_sound: set[str] = set()  # stores checked by this process
_reaped: set[str] = set()  # stores whose dead runs this process has marked


def connect():
    """The mlflow module pointed at the store, after checking the store (once per
    process): a damaged SQLite store is a one-line UserError."""
    with importing():  # MLflow's 1 s of imports: see pipelines.process
        import mlflow

    uri = tracking_uri()
    if (path := sqlite_path(uri)) is not None:
        seed_store(path)
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    return mlflow


def seed_store(path: Path) -> None:
    """A new SQLite store starts as a copy of an empty store that MLflow made once for
    this MLflow version and schema (making one runs a hundred schema migrations: a second
    per new store). The copy lacks only the Default experiment, which MLflow adds on
    opening it, with this store's artifact root. Put in place atomically: a store that
    appeared meanwhile is kept. Without a usable cache (read-only, not a directory, disk
    full) MLflow makes the store itself, as it would have without the cache."""
    if path.exists():
        return
    try:
        empty = _empty_store()
    except (OSError, sqlite3.Error):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    try:
        shutil.copyfile(empty, tmp)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _empty_store() -> Path:
    """The empty store of this MLflow version and schema head, made (by MLflow) if missing
    from the cache."""
    import mlflow
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = _get_latest_schema_revision()
    path = cache_root() / "mlflow-store" / f"empty-{mlflow.__version__}-{head}.db"
    if path.is_file() and _is_empty_store(path, head):
        return path
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        made = Path(tmp) / "store.db"
        SqlAlchemyStore(f"sqlite:///{made}", tmp).engine.dispose()
        con = sqlite3.connect(made)
        try:
            with con:
                con.execute("DELETE FROM experiments WHERE experiment_id = 0")
        finally:
            con.close()
        os.replace(made, path)
    return path


def _is_empty_store(path: Path, head: str) -> bool:
    """Whether `path` is a sound store at schema `head` with no experiment (a cached copy
    damaged or edited is made again)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return (con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
                    and con.execute("SELECT version_num FROM alembic_version").fetchall()
                    == [(head,)]
                    and con.execute("SELECT count(*) FROM experiments").fetchone()[0] == 0)
        finally:
            con.close()
    except sqlite3.Error:
        return False


def sqlite_path(uri: str) -> Path | None:
    """The database file of a SQLite store URI; None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def store_exists(uri: str) -> bool:
    """Whether the store is there to read (a tracking server always is)."""
    path = sqlite_path(uri)
    return path is None or path.exists()


def check_store(uri: str) -> None:
    """A SQLite store file, if there is one, passes SQLite's quick check (a truncated or
    overwritten file fails it before MLflow or the store lock touches it)."""
    path = sqlite_path(uri)
    if uri in _sound or path is None:
        return
    if path.is_file() and path.stat().st_size:
        try:
            con = sqlite3.connect(path, timeout=60)
            try:
                result = con.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error as exc:
            result = str(exc)
        if result != "ok":
            raise UserError(f"{path}: the MLflow store is damaged ({result}); restore it from "
                            "a backup, or point MLFLOW_TRACKING_URI at another store")
    _sound.add(uri)


def reap_dead_runs(client) -> list[str]:
    """Mark KILLED the runs still RUNNING whose ciplan process is gone (killed, crashed);
    their ids."""
    experiments = [e.experiment_id for e in client.search_experiments()
                   if e.name in (FORECAST_EXPERIMENT, PLAN_EXPERIMENT)]
    if not experiments:
        return []
    running = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'",
                                 max_results=1000)
    dead = [r.info.run_id for r in running
            if owner_dead(r.data.tags.get(PROCESS_TAG, ""))]
    for run_id in dead:
        client.set_terminated(run_id, status="KILLED")
    return dead


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the experiment `name` (created if new); its id. The
    first time in a process, runs left RUNNING by dead ciplan processes are marked KILLED."""
    mlflow = connect()
    uri = tracking_uri()
    if uri not in _reaped:
        with store_lock():
            reap_dead_runs(mlflow.MlflowClient())
        _reaped.add(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        experiment_id = mlflow.create_experiment(name, artifact_location=artifact_root(),
                                                 tags={KIND_TAG: KIND})
    else:
        experiment_id = found.experiment_id
        if found.tags.get(KIND_TAG) != KIND:
            mlflow.MlflowClient().set_experiment_tag(experiment_id, KIND_TAG, KIND)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def runs_page(ui: str, experiment_id: str) -> str:
    """The address of an experiment's runs table in the MLflow UI at `ui`. MLflow 3's UI
    opens an experiment on its GenAI overview (traces) unless its sidebar switch says
    "Model training"; `workflowType=machine_learning` in the address says it."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType={UI_WORKFLOW}"


def artifact_root() -> str | None:
    """Artifacts of a SQLite store live beside its database file (mlruns/artifacts);
    a tracking server decides for itself (None)."""
    path = sqlite_path(tracking_uri())
    return None if path is None else (path.parent / "artifacts").resolve().as_uri()


_held = threading.local()


@contextlib.contextmanager
def store_lock() -> Iterator[None]:
    """Serialise writes to a SQLite store across processes (SQLite has one writer at a
    time; MLflow would fail with 'database is locked'). A tracking server needs none.
    Re-entrant within a thread."""
    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is None or getattr(_held, "depth", 0):
        with lock_held_for_me():
            yield
        return
    check_store(uri)
    path = db.with_name(db.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def own_connections() -> None:
    """In a forked helper process: never use a store connection the parent opened before
    the fork (SQLite forbids carrying one across a fork; MLflow keeps a store, and its
    pooled connections, per process). SQLAlchemy's pool opens this process its own: the
    pattern SQLAlchemy documents for os.fork, on every pool of this process."""
    from sqlalchemy import event, exc
    from sqlalchemy.pool import Pool

    pid = os.getpid()

    def stamp(dbapi_connection, record) -> None:
        record.info["pid"] = pid

    def check(dbapi_connection, record, proxy) -> None:
        if record.info.get("pid") != pid:
            record.dbapi_connection = proxy.dbapi_connection = None  # the parent's: not closed
            raise exc.DisconnectionError("a connection opened by the parent process")

    event.listen(Pool, "connect", stamp)
    event.listen(Pool, "checkout", check)


@contextlib.contextmanager
def lock_held_for_me() -> Iterator[None]:
    """The store lock as held already: by this thread (re-entrant), a tracking server
    (which needs none), or in a helper process by the process it works for, which waits
    for it; `store_lock`s inside pass through."""
    _held.depth = getattr(_held, "depth", 0) + 1
    try:
        yield
    finally:
        _held.depth -= 1


def git_commit() -> str:
    """The commit of the code that ran ("unknown" outside a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def config_hash(config: dict) -> str:
    """A short hash of the settings a run used, so equal settings compare as equal."""
    text = repr(sorted(config.items()))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def lineage(fingerprint: str, config: dict) -> dict[str, str]:
    """Tags every run carries: data fingerprint, code commit, config hash, and the process
    running it (so a run left RUNNING by a killed process can be told apart)."""
    return {"data_fingerprint": fingerprint, "git_commit": git_commit(),
            "config_hash": config_hash(config), PROCESS_TAG: owner_id()}


def champion(name: str):
    """The registry version aliased `champion` of model `name`, or a clear error."""
    from mlflow.exceptions import MlflowException

    missing = UserError(f"no model {name!r} with alias {CHAMPION!r} in the registry at "
                        f"{tracking_uri()}; run `ciplan train` first")
    if not store_exists(tracking_uri()):
        raise missing  # without creating a store
    try:
        return connect().MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise missing from None


def move_champions(versions: dict[str, str]) -> None:
    """Alias `champion` to these versions (of one finished train run), one after the
    other: MLflow has no transaction over two aliases, so `champions` checks the pair."""
    client = connect().MlflowClient()
    for i, (name, version) in enumerate(versions.items()):
        if i:
            stop_here("train:champions")
        client.set_registered_model_alias(name, CHAMPION, version)


def champions() -> dict[str, str]:
    """The champion version of each model, when both come from one finished train run;
    otherwise (a training killed while moving them) a one-line UserError."""
    found = {name: champion(name) for name in MODELS}
    runs = {name: v.tags.get(TRAIN_RUN_TAG) for name, v in found.items()}
    if None in runs.values() or len(set(runs.values())) != 1:
        pairs = ", ".join(f"{n} version {found[n].version} from train run {r}"
                          for n, r in runs.items())
        raise UserError(f"the champions come from different train runs ({pairs}): a training "
                        "was interrupted while moving them; run `ciplan train` again")
    finished(next(iter(runs.values())), "the champions' train run")
    return {name: str(v.version) for name, v in found.items()}


def finished(run_id: str, what: str) -> None:
    """A one-line UserError unless run `run_id` exists in the store and FINISHED."""
    from mlflow.exceptions import MlflowException

    try:
        status = connect().MlflowClient().get_run(run_id).info.status
    except MlflowException:
        raise UserError(f"{what} {run_id} is not in the MLflow store at {tracking_uri()}"
                        ) from None
    if status != "FINISHED":
        raise UserError(f"{what} {run_id} did not finish (status {status}); run `ciplan "
                        "train` again")
