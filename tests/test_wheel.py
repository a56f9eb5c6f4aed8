"""ciplan as a user installs it: a wheel (not editable) in a fresh virtual environment,
run from another directory. Catches files the package needs but does not ship."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh_venv(tmp: Path) -> Path:
    """A new venv whose only ciplan is the wheel; its dependencies are borrowed from this
    environment's site-packages (a .pth line), so nothing is downloaded."""
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, cwd=tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # a plain path line: this environment's editable hook (a .pth import) is not run
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheel = next(wheels.glob("ciplan-*.whl"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True)
    return venv


def test_wheel_installs_and_runs_from_elsewhere(tmp_path):
    venv = _fresh_venv(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "CIPLAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": ""}
    where = subprocess.run(
        [venv / "bin" / "python", "-c",
         "import forecasting, optimization.space as s; print(forecasting.__file__); "
         "print(len(s.load_space().deductible.candidates))"],
        capture_output=True, text=True, check=True, cwd=work, env=env).stdout.split()
    assert where[0].startswith(str(venv)), f"ciplan imported from {where[0]}, not the wheel"
    assert int(where[1]) >= 1  # the default plan space ships as package data
    run = subprocess.run([venv / "bin" / "ciplan", "run", "--scale", "0.02", "--out", "out"],
                         capture_output=True, text=True, cwd=work, env=env, timeout=540)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (work / "out" / "report" / "report.html").is_file()
    assert (work / "out" / "plans" / "A" / "plan.json").is_file()
