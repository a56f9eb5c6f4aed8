"""Fitted models in the MLflow registry, stored and loaded only in the format ciplan writes.

A model is logged with `mlflow.sklearn.log_model` in the skops format (the registry, the
signature and the UI stay MLflow's), and its registered version carries the SHA-256 of its
`model.skops` file. Loading never asks the `MLmodel` file beside the model how to load it:
ciplan reads `model.skops` itself, checks the hash recorded at training, and lets skops
build only the types listed here, in ciplan's code (not in any file of the store).

What is logged is a `ServedModel`: the estimator and the categories each cohort key was
trained on. MLflow's signature checks column types only, so a served model (`mlflow models
serve`, `mlflow.pyfunc.load_model`) checks the values itself: sex "X" or residence "moon"
is refused with the column, the values and the known ones, never priced as the baseline
cohort (which is what the one-hot design makes of a level it has not seen).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator

from forecasting.errors import UserError
from pipelines.conventions import MODEL_FORMAT
from pipelines.tracking import connect

__all__ = ["HASH_TAG", "MODEL_FILE", "MODEL_FORMAT", "TRUSTED_TYPES", "ServedModel",
           "key_levels", "load_estimator", "log_estimator"]

MODEL_FILE = "model.skops"
HASH_TAG = "model_sha256"
# Types beyond skops' own defaults that ciplan's estimators hold; a test fails when a
# candidate model holds one not listed (add it here, after reading what it is).
TRUSTED_TYPES = (
    "forecasting.models.features.CohortDesign",
    "forecasting.models.frequency.GBMFrequency",
    "forecasting.models.frequency.PoissonFrequencyGLM",
    "forecasting.models.severity.SplicedSeverityModel",
    "forecasting.models.spliced.SplicedSeverity",
    "pipelines.model_files.ServedModel",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
    "scipy.interpolate._bsplines.BSpline",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class ServedModel(BaseEstimator):
    """A fitted estimator as MLflow serves it: `levels` maps each category column of the
    model's input to the values it was trained on; `predict` refuses any other value."""

    def __init__(self, estimator=None, levels: dict[str, list[str]] | None = None):
        self.estimator = estimator
        self.levels = levels

    def predict(self, frame: pd.DataFrame):
        check_levels(frame, self.levels or {})
        return self.estimator.predict(frame)


def key_levels(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values of each text column of a model's input frame (its category keys)."""
    return {c: sorted(map(str, frame[c].unique())) for c in frame.columns
            if pd.api.types.is_string_dtype(frame[c])}


def check_levels(frame: pd.DataFrame, levels: dict[str, list[str]]) -> None:
    """An MLflow invalid-parameter error (HTTP 400 when served) naming the first column
    holding a value outside its known levels, the values and the known ones."""
    for column, known in levels.items():
        if column not in frame:
            continue  # a missing column is the signature's to refuse
        values = frame[column].astype(str)
        odd = sorted(set(values[~values.isin(known)]))
        if odd:
            from mlflow.exceptions import MlflowException

            raise MlflowException.invalid_parameter_value(
                f"column {column!r}: {', '.join(map(repr, odd[:5]))} not among the values "
                f"the model was trained on ({', '.join(known)})")


def untrusted_types(estimator) -> list[str]:
    """The types of `estimator` that skops would refuse to load with TRUSTED_TYPES."""
    import skops.io

    found = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    return sorted(set(found) - set(TRUSTED_TYPES))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def log_estimator(estimator, signature, requirements: list[str],
                  levels: dict[str, list[str]] | None = None) -> tuple[str, str]:
    """Log `estimator` as model "model" of the active run (skops format), served with its
    category `levels` checked (ServedModel); its model URI and the SHA-256 of the file
    written, to register with the version."""
    import mlflow.sklearn

    estimator = ServedModel(estimator, levels or {})
    odd = untrusted_types(estimator)
    if odd:
        raise TypeError(f"{type(estimator.estimator).__name__} holds types outside "
                        f"pipelines.model_files.TRUSTED_TYPES: {odd}")
    info = mlflow.sklearn.log_model(estimator, name="model", pip_requirements=requirements,
                                    signature=signature, serialization_format="skops",
                                    skops_trusted_types=list(TRUSTED_TYPES))
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=tmp)
        return info.model_uri, sha256(Path(local) / MODEL_FILE)


def load_estimator(name: str, version: str):
    """The estimator of registered model `name` version `version`: its model.skops after
    the hash check, built by skops with TRUSTED_TYPES only. One-line UserError when the
    version has no hash, the file is missing or changed, or it holds another type."""
    import skops.io

    mlflow = connect()
    label = f"model {name!r} version {version}"
    expected = mlflow.MlflowClient().get_model_version(name, version).tags.get(HASH_TAG)
    if not expected:
        raise UserError(f"{label} carries no {HASH_TAG} tag: it was not registered by this "
                        "version of ciplan; run `ciplan train`")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp))
        path = local / MODEL_FILE
        if not path.is_file():
            raise UserError(f"{label}: no {MODEL_FILE} in its artifacts; ciplan loads models "
                            "only in the format it writes; run `ciplan train`")
        if sha256(path) != expected:
            raise UserError(f"{label}: {MODEL_FILE} does not match the SHA-256 recorded when "
                            "it was trained (the store was altered); run `ciplan train`")
        try:
            model = skops.io.load(path, trusted=list(TRUSTED_TYPES))
        except skops.io.exceptions.UntrustedTypesFoundException as exc:
            raise UserError(f"{label}: {MODEL_FILE} holds types ciplan does not load "
                            f"({exc})") from None
    return model.estimator if isinstance(model, ServedModel) else model
