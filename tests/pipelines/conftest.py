"""A real MLflow SQLite store and a trained model for the pipeline tests."""

from __future__ import annotations

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """A fresh tracking store for this module, selected through MLFLOW_TRACKING_URI."""
    root = tmp_path_factory.mktemp("mlflow")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def trained(store, small_dir):
    result = runner.invoke(app, ["train", "--data", str(small_dir)])
    assert result.exit_code == 0, result.output
    return result


def client() -> mlflow.MlflowClient:
    from pipelines.tracking import tracking_uri
    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.MlflowClient()


@pytest.fixture(scope="session")
def forecast_dir(trained, small_dir, tmp_path_factory):
    """A `ciplan forecast` of 2022 from the small city (champions of `trained`)."""
    out = tmp_path_factory.mktemp("forecast") / "fc"
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2022",
                                 "--out", str(out), "--scenarios", "200"])
    assert result.exit_code == 0, result.output
    return out
