"""Pipeline: `ciplan run` on the full default L city, then again with nothing changed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import ciplan, row, store_env


def run() -> None:
    print("Pipeline (issue 5)")
    with tempfile.TemporaryDirectory() as tmp:
        env = store_env(tmp)
        for label, target in (("ciplan run, full default L city (data cached)",
                               "target <= 180 s"),
                              ("ciplan run again, nothing changed", "target <= 30 s")):
            wall, peak = ciplan(["run", "--out", str(Path(tmp) / "run")], env)
            row(label, f"{wall:.1f} s", f"{target}; peak so far {peak:.0f} MB (<= 4096)")
