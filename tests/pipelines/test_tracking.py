"""MLflow for real: a `mlflow server` on 127.0.0.1, two processes on one SQLite store, and
`ciplan run` end to end (what `make demo` runs) on a small city."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real tracking server with a SQLite backend in a temp dir, stopped afterwards."""
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [str(mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 90 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_train_forecast_optimize_log_to_a_tracking_server(server, small_dir, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    assert runner.invoke(app, ["train", "--data", str(small_dir)]).exit_code == 0
    fc = tmp_path / "fc"
    result = runner.invoke(app, ["forecast", "--data", str(small_dir), "--year", "2022",
                                 "--out", str(fc), "--scenarios", "100"])
    assert result.exit_code == 0, result.output
    plan = tmp_path / "plan"
    result = runner.invoke(app, ["optimize", "--forecast", str(fc), "--out", str(plan),
                                 "--frontier-points", "2"])
    assert result.exit_code == 0, result.output
    # read everything back through the REST API
    client = mlflow.MlflowClient(tracking_uri=server)
    doc = json.loads((plan / "plan.json").read_text())
    run = client.get_run(doc["run_id"])
    assert run.data.metrics["expected_loss"] == pytest.approx(doc["kpis"]["expected_loss"])
    for tag in ("data_fingerprint", "git_commit", "config_hash", "forecast_run",
                "version_claim-frequency"):
        assert run.data.tags[tag], tag
    forecast_run = client.get_run(run.data.tags["forecast_run"])
    assert forecast_run.data.tags["data_fingerprint"] == run.data.tags["data_fingerprint"]
    version = client.get_model_version_by_alias("claim-frequency", "champion")
    assert version.version == run.data.tags["version_claim-frequency"]
    artifacts = {a.path for a in client.list_artifacts(doc["run_id"], "plan")}
    assert "plan/plan.json" in artifacts


def test_two_processes_optimize_into_one_sqlite_store(forecast_dir, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'shared.db'}"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "optimize", "--forecast", str(forecast_dir),
         "--objective", objective, "--out", str(tmp_path / objective),
         "--frontier-points", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for objective in ("min-loss", "break-even")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("plan-optimization")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.data.tags["objective"] for r in runs) == ["break-even", "min-loss"]


def test_run_end_to_end_and_reuse(server, tmp_path, monkeypatch):
    """The path `make demo` takes, on a 1 % city, against a tracking server: report
    written; a re-run in Chinese reuses the work. The plan experiment then lines up one
    baseline run and one run per proposal, with the same param and metric names, each
    carrying the report in both languages."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    out = tmp_path / "run"
    first = runner.invoke(app, ["run", "--scale", "0.01", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "report" / "report.html").exists() and (out / "report" / "report.xlsx").exists()
    assert {p.name for p in (out / "plans").iterdir()} == {"A", "B", "C"}
    again = runner.invoke(app, ["run", "--scale", "0.01", "--out", str(out), "--lang", "zh"])
    assert again.exit_code == 0, again.output
    assert "Reusing train run" in again.output and "Reused:" in again.output
    assert "城乡居民大病保险" in (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "Reusing the report" not in again.output  # another language: written again
    written = (out / "report" / "report.html").stat().st_mtime_ns
    third = runner.invoke(app, ["run", "--scale", "0.01", "--out", str(out), "--lang", "zh"])
    assert third.exit_code == 0, third.output
    assert "Reusing the report" in third.output  # nothing changed: the same pages
    assert (out / "report" / "report.html").stat().st_mtime_ns == written
    client = mlflow.MlflowClient(tracking_uri=server)
    # the server holds the other tests' runs too: this city's are those of its data
    fingerprint = json.loads((out / "plans" / "A" / "plan.json").read_text())[
        "provenance"]["data_fingerprint"]
    ours = f"tags.data_fingerprint = '{fingerprint}'"
    runs = client.search_runs([client.get_experiment_by_name("claims-forecast").experiment_id],
                              filter_string=f"attributes.run_name = 'train' and {ours}")
    assert len(runs) == 1  # trained once, reused once
    _assert_proposals_line_up(client, out, server, again.output, ours)


def _assert_proposals_line_up(client, out: Path, server: str, said: str, ours: str) -> None:
    """One baseline and one finished run per proposal that has a plan, named and tagged,
    with aligned params and metrics (a name is a param or a metric, not both) and the
    report in both languages; the end-of-run message gives the runs table's address."""
    experiment = client.get_experiment_by_name("plan-optimization")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert (f"{server}/#/experiments/{experiment.experiment_id}/runs?workflowType="
            "machine_learning") in said
    finished = client.search_runs([experiment.experiment_id],
                                  filter_string=f"attributes.status = 'FINISHED' and {ours}")
    by_tag = {}
    for run in finished:
        by_tag.setdefault(run.data.tags["proposal"], []).append(run)
    docs = {key: json.loads((out / "plans" / key / "plan.json").read_text())
            for key in "ABC"}
    planned = {key: doc["run_id"] for key, doc in docs.items() if doc.get("run_id")}
    assert planned and set(by_tag) == {*planned, "baseline"}, by_tag
    assert all(len(runs) == 1 for runs in by_tag.values()), by_tag
    for key, run_id in planned.items():
        run = by_tag[key][0]
        assert run.info.run_id == run_id
        assert run.info.run_name == f"{key}-{docs[key]['objective']}"
    baseline = by_tag["baseline"][0]
    params = set(baseline.data.params)
    metrics = set(baseline.data.metrics)
    assert params and metrics and not params & metrics
    assert {"payout_at_50000", "paid_less_claimants", "paid_less_cny"} <= metrics
    for key in planned:
        run = by_tag[key][0]
        assert set(run.data.params) == params, key
        assert set(run.data.metrics) - {"solve_seconds"} == metrics, key
    for run in (baseline, *(by_tag[k][0] for k in planned)):
        for lang in ("en", "zh"):
            names = {a.path for a in client.list_artifacts(run.info.run_id, f"report/{lang}")}
            assert f"report/{lang}/report.html" in names, (run.info.run_name, lang, names)



def _contents(db: Path) -> tuple[set, dict]:
    """A SQLite file's schema and its rows per table (the experiments' times left out). The
    schema as the pieces of each statement, sorted: MLflow itself writes a table's
    constraints in any order from one new store to the next."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        schema = {(kind, name, tuple(sorted(p.strip() for p in (sql or "").split(","))))
                  for kind, name, sql in con.execute("SELECT type, name, sql FROM sqlite_master")}
        rows = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cols = [c[1] for c in con.execute(f'PRAGMA table_info("{table}")')
                    if c[1] not in ("creation_time", "last_update_time")]
            quoted = ", ".join(f'"{c}"' for c in cols)
            rows[table] = sorted(map(repr, con.execute(f'SELECT {quoted} FROM "{table}"')))
        return schema, rows
    finally:
        con.close()


def test_a_seeded_store_is_the_store_mlflow_makes(tmp_path, monkeypatch):
    """A store copied from the cached empty store, once MLflow opens it, holds what a store
    MLflow makes from nothing holds: same schema, same rows, the Default experiment under
    its own artifact root. A damaged cached copy is made again; a store is never replaced."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from pipelines.tracking import seed_store

    monkeypatch.setenv("CIPLAN_CACHE", str(tmp_path / "cache"))
    made, seeded = tmp_path / "made", tmp_path / "seeded"
    made.mkdir()
    SqlAlchemyStore(f"sqlite:///{made / 'm.db'}", str(made / "art")).engine.dispose()
    seed_store(seeded / "m.db")
    SqlAlchemyStore(f"sqlite:///{seeded / 'm.db'}", str(seeded / "art")).engine.dispose()
    (schema_a, rows_a), (schema_b, rows_b) = _contents(made / "m.db"), _contents(
        seeded / "m.db")
    assert schema_a == schema_b
    assert rows_a.pop("experiments") == [repr((0, "Default", str(made / "art" / "0"),
                                               "active", "default"))]
    assert rows_b.pop("experiments") == [repr((0, "Default", str(seeded / "art" / "0"),
                                               "active", "default"))]
    assert rows_a == rows_b

    cached = next((tmp_path / "cache" / "mlflow-store").glob("empty-*.db"))
    cached.write_bytes(b"garbage" * 100)
    seed_store(tmp_path / "again" / "m.db")
    assert _contents(tmp_path / "again" / "m.db")[0] == schema_a
    assert _contents(cached)[0] == schema_a

    before = (seeded / "m.db").read_bytes()
    seed_store(seeded / "m.db")
    assert (seeded / "m.db").read_bytes() == before


def test_a_cache_that_cannot_be_written_leaves_the_store_to_mlflow(tmp_path, monkeypatch):
    """$CIPLAN_CACHE unusable (here a file, as read-only as it gets for root): a new store
    is still made, by MLflow, and opens with its Default experiment."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    from pipelines.tracking import seed_store

    (tmp_path / "cache").write_text("not a directory")
    monkeypatch.setenv("CIPLAN_CACHE", str(tmp_path / "cache"))
    seed_store(tmp_path / "store" / "m.db")
    store = SqlAlchemyStore(f"sqlite:///{tmp_path / 'store' / 'm.db'}", str(tmp_path / "art"))
    try:
        assert [e.name for e in store.search_experiments()] == ["Default"]
    finally:
        store.engine.dispose()


def test_plan_runs_name_the_money_unit_of_their_metrics():
    """`paid_less_cny`, `expected_loss`, ... keep their names in every portfolio (runs line
    up in the compare view); the run's tag `currency` says what unit they are in."""
    from optimization.space import load_space
    from pipelines.workflows.propose import plan_tags

    space = load_space()
    assert plan_tags({"currency": "HKD"}, space, "min-loss", "A")["currency"] == "HKD"
    assert plan_tags({}, space, "today", "baseline")["currency"] == "CNY"
