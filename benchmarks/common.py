"""Benchmark helpers: run code in a child process (with its peak memory), print a row."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def in_child(code: str) -> dict:
    """Run Python `code` (which prints one JSON line) in a fresh process; add its peak RSS."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def row(name: str, value: str, target: str = "") -> None:
    print(f"  {name:<58} {value:>14}  {target}")


def ciplan(args: list[str], env: dict) -> tuple[float, float]:
    """Run `ciplan ARGS` in a child process: wall time (s) and peak memory so far (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def store_env(tmp: str) -> dict:
    """An environment with a temporary MLflow store and the built-in data already cached,
    so that only the command under test is timed."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
    subprocess.run([sys.executable, "-c", "from pipelines.workflows.builtin import builtin_data; "
                    "builtin_data()"], check=True, env=env)
    return env
