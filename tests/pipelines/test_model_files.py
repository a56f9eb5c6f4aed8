"""Models are loaded only as ciplan wrote them: model.skops, the hash recorded at training,
the trusted types in ciplan's code; whatever the MLmodel file beside them says."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pytest
import skops.io
import yaml

from forecasting.data.dataset import load_data
from forecasting.errors import UserError
from pipelines.cli import app
from pipelines.model_files import HASH_TAG, MODEL_FILE, load_estimator, sha256, untrusted_types
from pipelines.tracking import FREQUENCY_MODEL, SEVERITY_MODEL
from pipelines.workflows.train import candidates
from tests.cli import runner
from tests.payload import payload_bytes
from tests.pipelines.conftest import client


class Untrusted:
    """A type no list trusts."""

    def __init__(self):
        self.values = [1, 2, 3]


def test_every_candidate_model_holds_only_trusted_types(small_dir):
    """When a model gains a type, this fails first: add it to TRUSTED_TYPES knowingly."""
    ds = load_data(small_dir)
    for cand in candidates(ds):
        fitted = cand.model.fit(ds.cells)
        for est in (fitted.freq_, fitted.sev_):
            assert untrusted_types(est) == [], (cand.name, type(est).__name__)


def _champion(name: str) -> tuple[str, Path]:
    """The champion version of `name` and the folder of its files in the store."""
    version = client().get_model_version_by_alias(name, "champion")
    location = mlflow.get_logged_model(version.source.rsplit("/", 1)[-1]).artifact_location
    return str(version.version), Path(unquote(urlparse(location).path))


@contextlib.contextmanager
def _tampered(folder: Path) -> Iterator[Path]:
    """Change the model's files in the block; they are put back afterwards."""
    backup = folder.with_name(folder.name + ".backup")
    shutil.copytree(folder, backup)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)
        backup.rename(folder)


def test_a_model_file_naming_another_format_runs_nothing(trained, small_dir, tmp_path):
    """MLmodel switched to cloudpickle with a payload beside it: ciplan reads model.skops
    as always, so the forecast works and the payload never runs."""
    marker = tmp_path / "payload-ran"
    _, folder = _champion(FREQUENCY_MODEL)
    with _tampered(folder):
        spec = yaml.safe_load((folder / "MLmodel").read_text())
        spec["flavors"]["sklearn"].update(serialization_format="cloudpickle",
                                          pickled_model="model.pkl")
        spec["flavors"]["python_function"]["model_path"] = "model.pkl"
        (folder / "MLmodel").write_text(yaml.safe_dump(spec))
        (folder / "model.pkl").write_bytes(payload_bytes(marker))
        result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2022",
                                     "--out", str(tmp_path / "fc"), "--scenarios", "20"])
    assert result.exit_code == 0, result.output
    assert not marker.exists()


def test_a_changed_model_file_is_refused(trained):
    version, folder = _champion(FREQUENCY_MODEL)
    _, other = _champion(SEVERITY_MODEL)
    with _tampered(folder):
        shutil.copy(other / MODEL_FILE, folder / MODEL_FILE)
        with pytest.raises(UserError, match="does not match the SHA-256 recorded"):
            load_estimator(FREQUENCY_MODEL, version)


def test_an_untrusted_type_is_refused_even_with_a_matching_hash(trained):
    """Someone who can write the store rewrites the file and its hash: the type list, in
    ciplan's code, still refuses what it does not know."""
    version, folder = _champion(SEVERITY_MODEL)
    recorded = client().get_model_version(SEVERITY_MODEL, version).tags[HASH_TAG]
    with _tampered(folder):
        skops.io.dump(Untrusted(), folder / MODEL_FILE)
        client().set_model_version_tag(SEVERITY_MODEL, version, HASH_TAG,
                                       sha256(folder / MODEL_FILE))
        try:
            with pytest.raises(UserError, match="holds types ciplan does not load"):
                load_estimator(SEVERITY_MODEL, version)
        finally:
            client().set_model_version_tag(SEVERITY_MODEL, version, HASH_TAG, recorded)
    assert type(load_estimator(SEVERITY_MODEL, version)).__name__ == "SplicedSeverityModel"


@pytest.mark.parametrize("name", [FREQUENCY_MODEL, SEVERITY_MODEL])
def test_the_served_model_refuses_unknown_categories(trained, small_dir, name):
    """The champion loaded the way `mlflow models serve` loads it (pyfunc): rows of known
    cohorts give ciplan's own estimator's predictions; sex "X" or residence "moon" is an
    error naming the column and the value, not the baseline cohort's prediction."""
    from mlflow.exceptions import MlflowException

    served = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    cells = load_data(small_dir).cells.table
    rows = cells[["year", "age_band", "sex", "residence", "special_group"]].head(8)
    rows = rows.astype({"year": "int64", "age_band": "int64", "sex": str, "residence": str,
                        "special_group": bool}).reset_index(drop=True)
    version = client().get_model_version_by_alias(name, "champion").version
    own = load_estimator(name, str(version))
    assert list(served.predict(rows)) == pytest.approx(list(own.predict(rows)), rel=1e-12)
    for column, value in (("sex", "X"), ("residence", "moon")):
        bad = rows.copy()
        bad.loc[3, column] = value
        with pytest.raises(MlflowException, match=f"column '{column}': '{value}' not among"):
            served.predict(bad)
