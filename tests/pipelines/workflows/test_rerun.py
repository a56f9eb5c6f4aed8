"""`ciplan run` again with nothing changed decides from the data's key (files checked and
hashed) without reading the data whole; anything changed is still seen: other data or
another config train and forecast again, other data settings read the data again, bad data
still stop the run with one line before anything is written."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from optimization.space import default_space_text
from pipelines import cli
from tests.cli import one_line_error, runner, snapshot


@pytest.fixture
def rerun(tmp_path, monkeypatch, tiny_csv_dir):
    """`ciplan run` on a tiny CSV city in a store of its own: a function of extra
    arguments giving (result, how many times the data were read whole)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    space = tmp_path / "space.toml"
    # few scenarios, a budget wide enough that every proposal has a plan (as test_faults)
    space.write_text(default_space_text().replace("scenarios = 1000", "scenarios = 20")
                     .replace("max = 80.0", "max = 400.0"))
    reads = []
    load_data = cli.load_data

    def counted(*args, **kwargs):
        reads.append(args[0])
        return load_data(*args, **kwargs)

    monkeypatch.setattr(cli, "load_data", counted)

    def run(*extra: str):
        before = len(reads)
        result = runner.invoke(cli.app, ["run", "--data", str(tiny_csv_dir), "--out",
                                         str(tmp_path / "out"), "--config", str(space),
                                         *extra])
        return result, len(reads) - before

    return run


def _client() -> mlflow.MlflowClient:
    from pipelines.tracking import tracking_uri

    return mlflow.MlflowClient(tracking_uri=tracking_uri())


def _train_runs() -> list:
    client = _client()
    exp = client.get_experiment_by_name("claims-forecast")
    return client.search_runs([exp.experiment_id], "attributes.run_name = 'train'")


def test_a_rerun_with_nothing_changed_does_not_read_the_data(rerun, tiny_csv_dir,
                                                           tmp_path):
    first, reads = rerun()
    assert first.exit_code == 0, first.output
    assert reads == 1 and "Reused:" not in first.stdout
    again, reads = rerun()
    assert again.exit_code == 0, again.output
    assert reads == 0  # decided from the key: the data hashed, not read
    reused = again.stdout.split("Reused: ")[1]
    assert "train run" in reused and "forecast" in reused and "report" in reused
    assert all(f"proposal {key}" in reused for key in "ABC")
    assert first.stdout.splitlines()[:2] == again.stdout.splitlines()[:2]  # same runs
    assert len(_train_runs()) == 1
    # bad data then: one line, before anything is written
    before = snapshot(tmp_path / "out")
    claims = tiny_csv_dir / "claims.csv"
    table = pd.read_csv(claims)
    table.loc[0, "eligible_cost"] = -5.0
    table.to_csv(claims, index=False)
    result, reads = rerun()
    one_line_error(result.exit_code, result.stderr, "eligible_cost")
    assert reads == 1
    assert snapshot(tmp_path / "out") == before and len(_train_runs()) == 1


def test_a_rerun_sees_other_settings_config_and_data(rerun, tiny_csv_dir):
    assert rerun()[0].exit_code == 0
    # a data setting beyond the fingerprint (the largest believable cost): the data are
    # read and checked again, the work is reused
    result, reads = rerun("--max-cost", "1e8")
    assert result.exit_code == 0, result.output
    assert reads == 1 and "Reusing the report" in result.output
    # a train run that does not say which settings its data passed with (an older ciplan):
    # the data are read, nothing is recomputed
    run = _train_runs()[0]
    _client().delete_tag(run.info.run_id, "data_checks")
    result, reads = rerun()
    assert result.exit_code == 0 and reads == 1 and "Reusing the report" in result.output
    # another config: trained and forecast again
    result, reads = rerun("--frequency-rows", "ages")
    assert result.exit_code == 0, result.output
    assert reads == 1 and "Training the claim models" in result.output
    assert "Forecasting 2022" in result.output and "Reusing the forecast" not in result.output
    # other data (one claim less): trained and forecast again
    claims = tiny_csv_dir / "claims.csv"
    pd.read_csv(claims).iloc[1:].to_csv(claims, index=False)
    result, reads = rerun("--frequency-rows", "ages")
    assert result.exit_code == 0, result.output
    assert reads == 1 and "Training the claim models" in result.output
    assert "Forecasting 2022" in result.output and len(_train_runs()) == 3


def test_another_currency_forecasts_again_and_keeps_the_training(rerun, tmp_path):
    """The forecast, the plans and the report carry the money unit: a re-run with another
    `--currency` (or [data] currency) forecasts and optimises again (the models are the
    same), and the files it leaves say the new unit."""
    assert rerun()[0].exit_code == 0
    result, _ = rerun("--currency", "RMB")
    assert result.exit_code == 0, result.output
    assert "Training the claim models" not in result.output
    assert "Reusing the forecast" not in result.output and "Forecasting 2022" in result.output
    out = tmp_path / "out"
    for path in (out / "forecast" / "summary.json", out / "plans" / "A" / "plan.json"):
        text = path.read_text(encoding="utf-8")
        assert '"currency": "RMB"' in text and '"currency": "CNY"' not in text, path
    assert all(json.loads((out / "plans" / k / "plan.json").read_text())["currency"] == "RMB"
               for k in "ABC")
    page = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "RMB" in page and "CNY" not in page
    again, _ = rerun("--currency", "RMB")
    assert again.exit_code == 0 and "Reusing the forecast" in again.output


def test_run_prints_the_models_warnings_as_train_does(rerun, monkeypatch):
    """What the models said while training (here a severity tail with no finite mean, as
    the fit says it) is printed by `ciplan run` as `ciplan train` prints it, one
    `Warning: ...` line on stderr, and again when the train run is reused."""
    import warnings

    from forecasting.models.warnings import ModelWarning
    from pipelines.workflows import train

    said = ("severity of cohort 40-44: the tail has no finite mean (shape 0.9); priced "
            "with a floor index")
    champion = train._champion

    def warned(scores, kind):
        warnings.warn(ModelWarning(said), stacklevel=1)
        return champion(scores, kind)

    monkeypatch.setattr(train, "_champion", warned)
    first, _ = rerun()
    assert first.exit_code == 0, first.output
    assert f"Warning: {said}" in first.stderr.splitlines()
    assert first.stderr.count(said) == 1  # once, however often the models said it
    again, _ = rerun()
    assert again.exit_code == 0 and "train run" in again.stdout.split("Reused: ")[1]
    assert f"Warning: {said}" in again.stderr.splitlines()


def test_saying_a_forecasts_warnings_again_imports_no_models(tmp_path):
    """A re-run says the forecast's warnings again from its summary: that reads a file and
    imports nothing of the models (scikit-learn cost a re-run 0.6 s and 70 MB)."""
    import subprocess
    import sys

    from tests.cli import ROOT

    (tmp_path / "summary.json").write_text(json.dumps({"warnings": ["tail"]}),
                                           encoding="utf-8")
    code = ("import sys; from pathlib import Path; "
            "from pipelines.workflows.run_all import forecast_warnings; "
            f"print(forecast_warnings(Path({str(tmp_path)!r})), 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "['tail'] False"
