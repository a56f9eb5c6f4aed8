"""`ciplan optimize` end to end: files, the evaluator's numbers, the MLflow run."""

from __future__ import annotations

import html
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
                                               "frontier.csv", "member_impact.csv",
                                               "term.csv", "settlement.parquet",
                                               "manifest.json"}
    doc = json.loads((out / "plan.json").read_text())
    plan = plan_from_dict("plan.json", doc["plan"])
    # every reported figure is the evaluator's, recomputed here on the saved forecast
    kpis = evaluate_plan(plan, Forecast.load(forecast_dir), load_space().costs)
    assert doc["kpis"]["expected_loss"] == pytest.approx(kpis.expected_loss, rel=1e-9)
    assert doc["kpis"]["effective_ratio"] == pytest.approx(kpis.effective_ratio, rel=1e-9)
    run = client().get_run(doc["run_id"])
    assert run.data.params["deductible"] == f"{plan.deductible}"
    assert run.data.metrics["expected_loss"] == pytest.approx(kpis.expected_loss)
    for name in ("loss_ratio", "effective_ratio", "cvar95_loss", "prob_loss",
                 "payout_at_50000", "paid_less_claimants", "paid_less_cny"):
        assert name in run.data.metrics
    # a decision is a param, an outcome a metric: never both (one axis each in the UI)
    assert not set(run.data.params) & set(run.data.metrics)
    assert "premium_per_capita" in run.data.params
    assert run.data.metrics["payout_at_50000"] == pytest.approx(kpis.payout_at["50000"])
    forecast_run = json.loads((forecast_dir / "summary.json").read_text())["forecast_run"]
    assert run.data.tags["forecast_run"] == forecast_run
    assert doc["solver"]["status"] == "Optimal" and doc["solver"]["proved"]
    # who gains and who loses: the changes add up to the change of expected payouts
    impact = [r for r in doc["member_impact"] if r["by"] == "cost_band"]
    before = evaluate_plan(plan_from_dict("today", doc["status_quo"]["plan"]),
                           Forecast.load(forecast_dir), load_space().costs)
    assert sum(r["change"] for r in impact) == pytest.approx(
        kpis.expected_payout - before.expected_payout, abs=1e-3)


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
    assert "effective_ratio: lower the floor from 97.0%" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()
    # the run opened for the solve says why it failed
    failed = client().search_runs(
        [client().get_experiment_by_name("plan-optimization").experiment_id],
        filter_string="attributes.status = 'FAILED' and tags.objective = 'min-loss'")
    assert any("effective_ratio: lower the floor from 97.0%" in r.data.tags.get("infeasible", "")
               for r in failed)


def test_optimize_bad_config_key(forecast_dir, tmp_path):
    bad = tmp_path / "space.toml"
    bad.write_text(default_space_text().replace(
        "ratio_max = 0.90", "ratio_max = 1.5"))
    result = _optimize("--forecast", str(forecast_dir), "--out", str(tmp_path / "p"),
                       "--config", str(bad))
    assert result.exit_code == 2 and "bands.ratio_max" in result.stderr


def test_settlement_table_recomputes_the_figures(forecast_dir, tmp_path):
    """The scenario-level settlement saved beside plan.json gives the term's figures, and
    the run carries the contract terms as params and the settled results as metrics."""
    import pandas as pd

    out = tmp_path / "plan"
    assert _optimize("--forecast", str(forecast_dir), "--out", str(out)).exit_code == 0
    doc = json.loads((out / "plan.json").read_text())
    table = pd.read_parquet(out / "settlement.parquet")
    first = table[table["year"] == doc["year"]]
    row = doc["term"][0]
    assert row["expected_loss_after"] == pytest.approx(-first["insurer_result_after"].mean())
    assert row["fund_refund"] == pytest.approx(first["surplus_returned"].mean())
    assert doc["term"][-1]["year"] == "term" and len(doc["term"]) == 4
    run = client().get_run(doc["run_id"])
    assert run.data.params["contract_surplus_keep"] == "0.05"
    assert "expected_loss_after" in run.data.metrics and "fund_topup" in run.data.metrics
    # no loss sharing by default: settlement only returns surpluses
    settled = doc["kpis"]["settlement"]
    assert settled["expected_loss_after"] >= settled["expected_loss_before"] - 1e-6
    assert settled["fund_topup"] == 0.0


def test_project_command_writes_the_term(forecast_dir, tmp_path):
    out = tmp_path / "term"
    result = runner.invoke(app, ["project", "--forecast", str(forecast_dir), "--years", "2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    import pandas as pd

    years = pd.read_csv(out / "term.csv")
    assert list(years["year"].astype(str))[-1] == "term" and len(years) == 3
    bad = runner.invoke(app, ["project", "--forecast", str(forecast_dir), "--years", "0",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--years expected 1 to 10" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_baseline_run_lines_today_up_with_the_proposals(forecast_dir, tmp_path):
    """One `baseline` run for today's plan per forecast, with the proposals' param and
    metric names, today's figures, and reused rather than logged twice."""
    from pipelines.workflows.propose import log_baseline

    out = tmp_path / "plan"
    assert _optimize("--forecast", str(forecast_dir), "--out", str(out)).exit_code == 0
    doc = json.loads((out / "plan.json").read_text())
    fc, space = Forecast.load(forecast_dir), load_space()
    first = log_baseline(doc, fc.provenance, space)
    assert log_baseline(doc, fc.provenance, space) == first
    base, plan = client().get_run(first), client().get_run(doc["run_id"])
    assert base.data.tags["proposal"] == "baseline" and base.info.run_name == "baseline"
    assert base.data.tags["forecast_run"] == plan.data.tags["forecast_run"]
    assert set(base.data.params) == set(plan.data.params)
    assert set(base.data.metrics) == set(plan.data.metrics) - {"solve_seconds"}
    today = doc["status_quo"]["kpis"]
    assert base.data.metrics["expected_loss"] == pytest.approx(today["expected_loss"])
    assert base.data.metrics["payout_at_50000"] == pytest.approx(today["payout_at"]["50000"])
    assert float(base.data.params["premium_per_capita"]) == pytest.approx(
        doc["status_quo"]["plan"]["premium_per_capita"])


def test_the_plan_run_is_open_while_the_solver_runs(forecast_dir, tmp_path, monkeypatch):
    """The run spans the solve: MLflow's active run during `optimize` is the plan's run,
    and the run's start and end enclose the moment the solver was called."""
    import time

    import mlflow

    from pipelines.workflows import propose

    seen = {}
    solve = propose.optimize

    def watched(*args, **kwargs):
        seen["run"], seen["at"] = mlflow.active_run(), time.time() * 1000
        return solve(*args, **kwargs)

    monkeypatch.setattr(propose, "optimize", watched)
    fc, space = Forecast.load(forecast_dir), load_space()
    result = propose.run_optimize(fc, space, "min-loss", tmp_path / "plan", frontier_points=0)
    assert seen["run"] is not None and seen["run"].info.run_id == result.run_id
    run = client().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.start_time <= seen["at"] <= run.info.end_time
    assert (run.info.end_time - run.info.start_time) / 1000 >= result.optimum.seconds


def test_experiments_say_they_are_model_development():
    """Both experiments carry MLflow's experiment kind for model development (not GenAI),
    and the end-of-run message gives the runs table's address with the UI's workflow."""
    from pipelines.cli import ui_hint
    from pipelines.tracking import FORECAST_EXPERIMENT, PLAN_EXPERIMENT, use_experiment

    for name in (FORECAST_EXPERIMENT, PLAN_EXPERIMENT):
        use_experiment(name)
        tags = client().get_experiment_by_name(name).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
    local = ui_hint("sqlite:////tmp/x.db", "7")
    assert "make ui STORE=sqlite:////tmp/x.db" in local
    assert ("http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
            in local)
    server = ui_hint("http://10.0.0.2:5005", "3")
    assert "http://10.0.0.2:5005/#/experiments/3/runs?workflowType=machine_learning" in server


def test_a_floor_todays_plan_breaks_is_said_in_plan_json_cli_and_report(forecast_dir,
                                                                        tmp_path):
    """Today's plan below the effective-ratio floor: proposal A meets the floor and so
    gives up against today's plan; the CLI, plan.json's notes and the report (English
    and Chinese) say that today's plan is below the floor, with both figures."""
    import math

    from pipelines.workflows.propose import status_quo_of

    fc = Forecast.load(forecast_dir)
    today = evaluate_plan(status_quo_of(fc, load_space()), fc, load_space().costs)
    floor = math.ceil(today.effective_ratio * 100 + 1) / 100
    space = tmp_path / "space.toml"
    space.write_text(default_space_text().replace("effective_ratio_floor = 0.60",
                                                  f"effective_ratio_floor = {floor}"))
    out = tmp_path / "A"
    result = runner.invoke(app, ["optimize", "--frontier-points", "0", "--forecast",
                                 str(forecast_dir), "--config", str(space), "--out", str(out)])
    assert result.exit_code == 0, result.output
    said = (f"today's plan itself breaks the effective-ratio floor: its effective ratio is "
            f"{today.effective_ratio:.1%}, below the floor of {floor:.1%}; the plan proposed "
            "meets it")
    assert f"Note: {said}" in result.stdout
    doc = json.loads((out / "plan.json").read_text())
    assert any(n.startswith(said) for n in doc["notes"])
    (found,) = doc["today_breaks"]
    assert found["rule"] == "effective_ratio" and found["limit"] == floor
    assert doc["kpis"]["effective_ratio"] >= floor - 1e-9
    # the report names the plan A, its proposal; the note is said once, in its language
    for lang, words in (("en", "T" + said[1:].replace("the plan proposed", "proposal A")),
                        ("zh", f"现行方案本身低于实际报销比例下限：其实际报销比例为"
                               f"{today.effective_ratio:.1%}，下限为{floor:.1%}；方案A满足该规定")):
        report = tmp_path / f"report-{lang}"
        made = runner.invoke(app, ["report", "--plans", str(out), "--out", str(report),
                                   "--lang", lang])
        assert made.exit_code == 0, made.output
        page = html.unescape((report / "report.html").read_text(encoding="utf-8"))
        assert page.count(words) == 1 and page.count("itself breaks") == (lang == "en")
