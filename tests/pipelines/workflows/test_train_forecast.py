"""`ciplan train` and `ciplan forecast` against a real MLflow SQLite store in a temp dir."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.data.dataset import load_data
from pipelines.cli import app
from pipelines.tracking import FORECAST_EXPERIMENT
from tests.pipelines.conftest import client as _client

runner = CliRunner()


def test_forecast_before_training_says_what_to_do(small_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2023",
                                 "--out", str(tmp_path / "fc")])
    assert result.exit_code == 2
    assert "run `ciplan train` first" in result.stderr
    assert not (tmp_path / "fc").exists()


def test_train_logs_candidates_and_registers_champions(trained, small_dir, store):
    client = _client()
    exp = client.get_experiment_by_name(FORECAST_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.info.run_name == "train"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    kinds = [r.data.tags["kind"] for r in children]
    assert len(parents) == 1 and kinds.count("frequency") == 5 and kinds.count("severity") == 2
    fingerprint = load_data(small_dir).fingerprint
    for run in [*parents, *children]:
        assert run.data.tags["data_fingerprint"] == fingerprint
    for run in children:
        assert "backtest_poisson_deviance" in run.data.metrics
        assert "backtest_payout_error" in run.data.metrics
    # the champion of each kind has the lowest robust backtest score of its kind, and the
    # frequency champion is never worse than the one-hot band GLM, always a candidate
    freq = {r.data.tags["candidate"]: r.data.metrics["score_poisson_deviance"]
            for r in children if r.data.tags["kind"] == "frequency"}
    champion = parents[0].data.tags["champion_frequency"]
    assert champion == min(freq, key=freq.get)
    assert freq[champion] <= freq["poisson-bands"]
    sev = {r.data.tags["candidate"]: r.data.metrics["score_layer_error"]
           for r in children if r.data.tags["kind"] == "severity"}
    assert parents[0].data.tags["champion_severity"] == min(sev, key=sev.get)
    for name in ("claim-frequency", "claim-severity"):
        version = client.get_model_version_by_alias(name, "champion")
        assert version.tags["data_fingerprint"] == fingerprint
    for run in children:
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"backtest.csv"} <= artifacts
        # drawn by the helper before the run existed, written with its texts in one go
        png = "lorenz.png" if run.data.tags["kind"] == "frequency" else "qq.png"
        with open(client.download_artifacts(run.info.run_id, png), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
        if run.data.tags["kind"] == "frequency":
            assert {"frequency_by_age.png", "lorenz.png"} <= artifacts
        else:  # severity diagnostics: mean excess, QQ, layer fit, the splice profile
            assert {"severity_by_age.png", "mean_excess.png", "qq.png", "layer_fit.csv",
                    "splice_profile.csv"} <= artifacts
            assert float(run.data.params["fitted.joint_rows"]) == float(
                run.data.params["fitted.claimants"])


def test_forecast_writes_table_and_records_versions(trained, small_dir, small_city, tmp_path):
    out = tmp_path / "fc"
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2023",
                                 "--out", str(out), "--scenarios", "200"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "forecast.csv", "forecast.parquet", "summary.json", "forecast.json", "cohorts.parquet",
        "severity_costs.parquet", "frequency_design.parquet", "frequency_covariance.parquet",
        "manifest.json"}
    table = pd.read_parquet(out / "forecast.parquet")
    summary = json.loads((out / "summary.json").read_text())
    assert table["payout_expected"].sum() == pytest.approx(summary["payout_expected"])
    assert (table["payout_p05"] <= table["payout_p95"]).all()
    assert summary["payout_p05"] < summary["payout_expected"] < summary["payout_p95"]
    run = _client().get_run(summary["forecast_run"])
    assert run.data.tags["version_claim-frequency"] == summary["model_versions"][
        "claim-frequency"]
    assert run.data.metrics["payout_expected"] == pytest.approx(summary["payout_expected"])


@pytest.mark.parametrize(("year", "message"), [
    (2019, "needs the data of 2018"),
    (2030, "needs the data of 2029"),
])
def test_forecast_year_must_follow_the_data(trained, small_dir, tmp_path, year, message):
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", str(year),
                                 "--out", str(tmp_path / "fc")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and not (tmp_path / "fc").exists()


def test_forecast_of_a_year_in_the_data_uses_only_the_years_before(trained, small_dir,
                                                                     tmp_path):
    """Forecasting 2022 from 2019-2022 data is a held-out forecast: 2022 is not used."""
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2022",
                                 "--out", str(tmp_path / "fc"), "--scenarios", "50"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "fc" / "summary.json").read_text())
    assert summary["year"] == 2022


def test_forecast_unknown_run_id(trained, small_dir, tmp_path):
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2023",
                                 "--out", str(tmp_path / "fc"), "--run-id", "nope"])
    assert result.exit_code == 2 and "no MLflow run 'nope'" in result.stderr


def test_second_portfolio_trains_and_forecasts_without_a_plan(health_dir, tmp_path,
                                                              monkeypatch):
    """The health portfolio (policy periods, service dates, keys from its ciplan.toml, no
    scheme.toml): train picks a frequency champion at least as good as the one-hot band
    GLM on the backtest (here one with the age x sex interaction the data hold), and the
    forecast prices layers in the portfolio's currency without any plan."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'health.db'}")
    trained = runner.invoke(app, ["train", "--data", str(health_dir)])
    assert trained.exit_code == 0, trained.output
    client = _client()
    exp = client.get_experiment_by_name(FORECAST_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.info.run_name == "train")
    scores = {r.data.tags["candidate"]: r.data.metrics["score_poisson_deviance"]
              for r in runs if r.data.tags.get("kind") == "frequency"}
    champion = parent.data.tags["champion_frequency"]
    assert scores[champion] == min(scores.values()) <= scores["poisson-bands"]
    assert "-x-sex" in champion
    out = tmp_path / "fc"
    result = runner.invoke(app, ["forecast", "--data", str(health_dir), "--year", "2024",
                                 "--out", str(out), "--scenarios", "50"])
    assert result.exit_code == 0, result.output
    assert "no plan in force to price" in result.stdout
    table = pd.read_csv(out / "forecast.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["currency"] == "EUR" and "payout_expected" not in summary
    layers = [c for c in table.columns if c.startswith("layer_")]
    assert len(layers) >= 4 and not any(c.startswith("payout") for c in table.columns)
    np.testing.assert_allclose(table[layers].sum(axis=1), table["mean_severity"], rtol=1e-9)
    assert summary["claims"] > summary["claimants"] > 0  # claim counts forecast too


def test_as_of_train_and_forecast_state_the_completion(small_dir, tmp_path, monkeypatch):
    """Trained and forecast from the data as of 2022-01-31: the train run logs the as-of
    date and 2021's completion, the forecast carries it to the report (its provenance and
    summary), its expected payout is the one of the completed cells' models."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'asof.db'}")
    as_of = ["--data", str(small_dir), "--as-of", "2022-01-31"]
    trained = runner.invoke(app, ["train", *as_of])
    assert trained.exit_code == 0, trained.output
    run = _client().search_runs(
        [_client().get_experiment_by_name(FORECAST_EXPERIMENT).experiment_id],
        filter_string="attributes.run_name = 'train'")[0]
    assert run.data.params["as_of"] == "2022-01-31"
    assert run.data.params["development"] == "chain-ladder"
    assert run.data.params["backtest_as_of"] == "01-31"
    assert "each backtest origin trained on the data as of its 01-31" in trained.stderr
    assert "registered model" not in trained.stderr.lower()  # MLflow's own lines kept off
    factor = run.data.metrics["development_factor"]   # the last step: 2021
    assert factor > 1.01
    out = tmp_path / "fc"
    result = runner.invoke(app, ["forecast", *as_of, "--year", "2022", "--out", str(out),
                                 "--scenarios", "200"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "forecast.json").read_text(encoding="utf-8"))
    stated = doc["provenance"]["development"]
    assert stated["as_of"] == "2022-01-31" and stated["year"] == 2021
    assert stated["factor"] == pytest.approx(factor)
    assert stated["low"] < stated["completed"] < stated["high"]
    assert stated["completed"] == pytest.approx(stated["reported"] * factor)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["development"] == stated
    assert not any("as of" in w for w in summary["warnings"])
    # the same models read on complete data: the forecast says the dates differ
    other = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2022",
                                "--out", str(tmp_path / "fc2"), "--scenarios", "50"])
    assert other.exit_code == 0, other.output
    assert ("trained on the data as of 2022-01-31, the forecast reads them as complete"
            in other.stderr)
