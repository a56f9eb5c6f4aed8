"""Pipeline: `ciplan run` on the full default L city, then again with nothing changed."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import row


def run() -> None:
    print("Pipeline (issue 5)")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        subprocess.run([sys.executable, "-c", "from pipelines.builtin import builtin_data; "
                        "builtin_data()"], check=True, env=env)
        for label, target in (("ciplan run, full default L city (data cached)",
                               "target <= 180 s"),
                              ("ciplan run again, nothing changed", "target <= 30 s")):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--out",
                                   str(Path(tmp) / "run")], env=env, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t0
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            row(label, f"{wall:.1f} s", f"{target}; peak so far {peak:.0f} MB (<= 4096)")
