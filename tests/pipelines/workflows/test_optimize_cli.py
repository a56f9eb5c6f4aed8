"""`ciplan optimize` end to end: files, the evaluator's numbers, the MLflow run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from forecasting.forecast import Forecast
from forecasting.scheme.in_force import plan_from_dict
from optimization.evaluate import evaluate_plan
from optimization.space import default_space_text, load_space
from pipelines.cli import app
from tests.pipelines.conftest import client

runner = CliRunner()


def _optimize(*args: str):
    return runner.invoke(app, ["optimize", "--frontier-points", "3", *args])


@pytest.mark.parametrize("objective", ["min-loss", "break-even"])
def test_optimize_writes_plan_and_logs_run(forecast_dir, tmp_path, objective):
    out = tmp_path / "plan"
    result = _optimize("--forecast", str(forecast_dir), "--objective", objective,
                       "--out", str(out))
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"plan.json", "shadow_prices.csv",
                                               "frontier.csv", "manifest.json"}
    doc = json.loads((out / "plan.json").read_text())
    plan = plan_from_dict("plan.json", doc["plan"])
    # every reported figure is the evaluator's, recomputed here on the saved forecast
    kpis = evaluate_plan(plan, Forecast.load(forecast_dir), load_space().costs)
    assert doc["kpis"]["expected_loss"] == pytest.approx(kpis.expected_loss, rel=1e-9)
    assert doc["kpis"]["effective_ratio"] == pytest.approx(kpis.effective_ratio, rel=1e-9)
    run = client().get_run(doc["run_id"])
    assert run.data.params["deductible"] == f"{plan.deductible}"
    assert run.data.metrics["expected_loss"] == pytest.approx(kpis.expected_loss)
    for name in ("loss_ratio", "effective_ratio", "premium_per_capita", "cvar95_loss",
                 "prob_loss"):
        assert name in run.data.metrics
    forecast_run = json.loads((forecast_dir / "summary.json").read_text())["forecast_run"]
    assert run.data.tags["forecast_run"] == forecast_run
    assert doc["solver"]["status"] == "Optimal"


def test_optimize_from_forecast_run(forecast_dir, tmp_path):
    run_id = json.loads((forecast_dir / "summary.json").read_text())["forecast_run"]
    result = _optimize("--forecast-run", run_id, "--out", str(tmp_path / "plan"),
                       "--solver", "cbc")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--objective", "max-profit"], "--objective expected one of"),
    (["--solver", "gurobi"], "--solver expected one of highs, cbc"),
    (["--forecast-run", "abc"], "exactly one of --forecast DIR or --forecast-run"),
])
def test_optimize_bad_requests(forecast_dir, tmp_path, args, message):
    result = _optimize("--forecast", str(forecast_dir), "--out", str(tmp_path / "p"), *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "p").exists()


def test_optimize_infeasible_config(forecast_dir, tmp_path):
    text = default_space_text()
    bad = tmp_path / "space.toml"
    bad.write_text(text.replace("effective_ratio_floor = 0.60", "effective_ratio_floor = 0.97"))
    result = _optimize("--forecast", str(forecast_dir), "--out", str(tmp_path / "p"),
                       "--config", str(bad))
    assert result.exit_code == 2
    assert "effective_ratio by" in result.stderr and "\\n" not in result.stderr.strip()
    assert not (tmp_path / "p").exists()


def test_optimize_bad_config_key(forecast_dir, tmp_path):
    bad = tmp_path / "space.toml"
    bad.write_text(default_space_text().replace(
        "ratio_max = 0.90", "ratio_max = 1.5"))
    result = _optimize("--forecast", str(forecast_dir), "--out", str(tmp_path / "p"),
                       "--config", str(bad))
    assert result.exit_code == 2 and "bands.ratio_max" in result.stderr
