"""Speed (issue 16): in one run on the full default L city with the data cached, the time
of reading and aggregating the data, `ciplan train` (and its ratio to that), `ciplan run`
from scratch and again with nothing changed (with its own peak memory), `ciplan --help`,
and the machine's load average while measuring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import in_child, row, store_env

READ = """
import json, time
from forecasting.data.dataset import load_data
from pipelines.workflows.builtin import builtin_data
path = builtin_data()
times = []
for _ in range(3):
    t = time.perf_counter()
    load_data(path)
    times.append(time.perf_counter() - t)
print(json.dumps({"best": min(times)}))
"""

# runs one command as its grandchild, so that the peak memory is that command's alone
MEASURED = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "rc": proc.returncode, "err": proc.stderr[-3000:],
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measured(args: list[str], env: dict) -> tuple[float, float]:
    """`ciplan ARGS` in its own process: wall time (s) and its own peak memory (MB)."""
    out = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m",
                          "pipelines.cli", *args], env=env, capture_output=True, text=True,
                         check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if got["rc"]:
        raise SystemExit(got["err"])
    return got["wall"], got["peak_mb"]


def run() -> None:
    print("Speed (issue 16)")
    load_before = os.getloadavg()[0]
    read = in_child(READ)["best"]
    row("read + validate + aggregate the data (best of 3)", f"{read:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        env = store_env(tmp)
        helps = [measured(["--help"], env)[0] for _ in range(3)]
        row("ciplan --help (best of 3)", f"{min(helps):.2f} s", "target <= 1 s")
        train, train_mb = measured(["train"], env)
        row("ciplan train, full default L city (7 candidates)", f"{train:.1f} s",
            f"= {train / read:.1f}x reading; target <= 6 s and <= 10x; peak {train_mb:.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        env = store_env(tmp)
        out = str(Path(tmp) / "run")
        first, first_mb = measured(["run", "--out", out], env)
        again, again_mb = measured(["run", "--out", out], env)
        row("ciplan run from scratch (data cached)", f"{first:.1f} s",
            f"target <= 20 s; peak {first_mb:.0f} MB (target <= 2048)")
        row("ciplan run again, nothing changed", f"{again:.1f} s",
            f"target <= 3 s; peak {again_mb:.0f} MB")
    row("load average (1 min) before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
        f"{os.cpu_count()} cores")


if __name__ == "__main__":
    run()
