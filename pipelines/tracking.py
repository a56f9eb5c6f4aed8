"""MLflow conventions: where runs go, experiment names, lineage tags on every run.

Tracking URI: $MLFLOW_TRACKING_URI, else SQLite at mlruns/mlflow.db with artifacts under
mlruns/artifacts (MLflow 3 refuses the file store by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from forecasting.errors import UserError

FORECAST_EXPERIMENT = "claims-forecast"
PLAN_EXPERIMENT = "plan-optimization"
FREQUENCY_MODEL = "claim-frequency"
SEVERITY_MODEL = "claim-severity"
CHAMPION = "champion"
MLRUNS = Path("mlruns")


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns. Every use of MLflow
    starts here, so it is also where MLflow's usage telemetry is turned off (no network
    on the machines this runs on) unless the user set it."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    MLRUNS.mkdir(exist_ok=True)
    return f"sqlite:///{(MLRUNS / 'mlflow.db').resolve()}"


def use_experiment(name: str) -> str:
    """Point MLflow at the store and the experiment `name` (created if new); its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        experiment_id = mlflow.create_experiment(name, artifact_location=artifact_root())
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def artifact_root() -> str | None:
    """Artifacts of a SQLite store live beside its database file (mlruns/artifacts);
    a tracking server decides for itself (None)."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()


_held = threading.local()


@contextlib.contextmanager
def store_lock() -> Iterator[None]:
    """Serialise writes to a SQLite store across processes (SQLite has one writer at a
    time; MLflow would fail with 'database is locked'). A tracking server needs none.
    Re-entrant within a thread."""
    uri = tracking_uri()
    if not uri.startswith("sqlite:///") or getattr(_held, "depth", 0):
        _held.depth = getattr(_held, "depth", 0) + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    path = Path(uri.removeprefix("sqlite:///") + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


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
    """Tags every run carries: data fingerprint, code commit, config hash."""
    return {"data_fingerprint": fingerprint, "git_commit": git_commit(),
            "config_hash": config_hash(config)}


def champion(name: str):
    """The registry version aliased `champion` of model `name`, or a clear error."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise UserError(f"no model {name!r} with alias {CHAMPION!r} in the registry at "
                          f"{tracking_uri()}; run `ciplan train` first") from None
