"""`ciplan run` against crashes: real processes killed with SIGKILL at each stage (train,
moving the champions, the forecast and its rename, each proposal, the report), then run
again. Never a reused partial or foreign artifact, never a run left RUNNING, never a stale
temporary folder; two runs at once on one store train once.

Each killed process runs with $CIPLAN_STOP_AT naming the stage: it stops itself there
(forecasting.failpoints) and this test kills it with SIGKILL. Tiny cities (0.2 % of L
city) and 20 scenarios keep it quick.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from forecasting.data.dataset import load_data
from forecasting.data.publish import read_manifest
from forecasting.failpoints import ENV
from forecasting.simulate import simulate_city
from optimization.space import default_space_text
from pipelines.cli import app
from pipelines.workflows.builtin import write_city
from tests.cli import ROOT, one_line_error, runner


class Runs:
    """`ciplan run` as real processes on one store, each with its output kept in a file."""

    def __init__(self, tmp: Path):
        self.tmp, self.logs = tmp, {}
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
        self.env.pop(ENV, None)
        self.config = tmp / "space.toml"
        # few scenarios, and a budget wide enough that every proposal has a plan (on a
        # small city the risk appetite can need more than the bureau's 80 CNY)
        self.config.write_text(default_space_text().replace("scenarios = 1000",
                                                            "scenarios = 20")
                               .replace("max = 80.0", "max = 400.0"))

    def start(self, data: Path, out: Path, stop_at: str | None = None) -> subprocess.Popen:
        log = self.tmp / f"run{len(self.logs) + 1}.log"
        env = {**self.env, **({ENV: stop_at} if stop_at else {})}
        with open(log, "w") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "run", "--data", str(data), "--out",
                 str(out), "--config", str(self.config)], cwd=ROOT, env=env, stdout=fh,
                stderr=subprocess.STDOUT)
        self.logs[proc.pid] = log
        return proc

    def said(self, proc: subprocess.Popen) -> str:
        """What a run printed (its progress and messages)."""
        return self.logs[proc.pid].read_text()

    def finish(self, proc: subprocess.Popen) -> str:
        """Wait for a run to end well; what it printed."""
        assert proc.wait(timeout=600) == 0, self.said(proc)[-4000:]
        return self.said(proc)

    def kill_at(self, stage: str, data: Path, out: Path) -> str:
        """Run until `stage`, kill it there with SIGKILL; what it printed until then."""
        proc = self.start(data, out, stop_at=stage)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"never reached {stage}: {self.said(proc)[-4000:]}"
        proc.kill()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        return self.said(proc)

    def runs(self, **where) -> list:
        """Runs of the store; `name=` and `status=` narrow them."""
        client = mlflow.MlflowClient(tracking_uri=self.env["MLFLOW_TRACKING_URI"])
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        return [r for r in found if r.info.run_name == where.get("name", r.info.run_name)
                and r.info.status == where.get("status", r.info.status)]


@pytest.fixture(scope="module")
def cities(tmp_path_factory, tiny_city) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cities")
    return (write_city(tiny_city, root / "X"),
            write_city(simulate_city(seed=6, scale=0.002), root / "Y"))


def _fingerprint(folder: Path) -> str:
    return read_manifest(folder, "forecast")["inputs"]["data_fingerprint"]


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if ".tmp." in p.name or ".old." in p.name]


def test_kill_at_each_stage_then_run_again(cities, tmp_path):
    x, y = cities
    fp_x, fp_y = (load_data(d).fingerprint for d in cities)
    runs, out = Runs(tmp_path), tmp_path / "out"

    # two runs at once on one store: one trains, the other waits for it and reuses its run
    # (that one is killed while writing its forecast, before publishing it)
    first = runs.start(x, out)
    runs.kill_at("forecast:write", x, tmp_path / "twin")
    runs.finish(first)
    assert len(runs.runs(name="train")) == 1
    assert not (tmp_path / "twin" / "forecast").exists()

    # killed while training Y: a run left RUNNING, the old forecast (X's) still whole
    runs.kill_at("train:candidate", y, out)
    assert len(runs.runs(name="train", status="RUNNING")) == 1
    assert _fingerprint(out / "forecast") == fp_x

    # killed between the two champion aliases: the next process marks the dead run KILLED;
    # a forecast with the champions refuses the mixed pair
    runs.kill_at("train:champions", y, out)
    assert len(runs.runs(name="train", status="KILLED")) == 1
    result = runner.invoke(app, ["forecast", "--data", str(y), "--year", "2022", "--out",
                                 str(tmp_path / "fc")], env={
        "MLFLOW_TRACKING_URI": runs.env["MLFLOW_TRACKING_URI"]})
    one_line_error(result.exit_code, result.stderr, "champions come from different train runs",
                   "run `ciplan train` again")
    assert not (tmp_path / "fc").exists()

    # killed right after Y's forecast was swapped in, before its run finished
    runs.kill_at("publish:forecast:swapped", y, out)
    assert _fingerprint(out / "forecast") == fp_y

    # X again: Y's forecast (foreign, and of an unfinished run) is never reused
    said = runs.kill_at("propose:A", x, out)
    assert "Forecasting 2022" in said and "Reusing the forecast" not in said
    assert _fingerprint(out / "forecast") == fp_x
    runs.kill_at("publish:B:swap", x, out)  # the plan folder complete, not yet in place
    runs.kill_at("propose:C", x, out)
    runs.kill_at("report:write", x, out)
    assert _leftovers(out)  # the killed report left its temporary folder

    said = runs.finish(runs.start(x, out))
    assert "Reusing the forecast of 2022" in said
    for key in "ABC":
        assert f"Reusing proposal {key}" in said
    _assert_consistent(out, fp_x)
    assert not _leftovers(out)
    assert not runs.runs(status="RUNNING")
    # the runs the kills left RUNNING: the twin's forecast, training Y, Y's forecast,
    # proposals A, B and C; none of the champions' kill (its run had finished) or the report's
    assert sorted(r.info.run_name for r in runs.runs(status="KILLED")) == [
        "A-min-loss", "B-break-even", "C-risk", "forecast-2022", "forecast-2022",
        "train"]


def _assert_consistent(out: Path, fingerprint: str) -> None:
    """Every folder whole, and each made from the one before it."""
    forecast = read_manifest(out / "forecast", "forecast")
    assert forecast["inputs"]["data_fingerprint"] == fingerprint
    plans = {key: read_manifest(out / "plans" / key, "plan") for key in "ABC"}
    for manifest in plans.values():
        assert manifest["inputs"]["forecast_hash"] == forecast["content_hash"]
    report = read_manifest(out / "report", "report")
    assert {k: v["content_hash"] for k, v in report["inputs"]["plans"].items()} == {
        k: m["content_hash"] for k, m in plans.items() if k in report["inputs"]["plans"]}
