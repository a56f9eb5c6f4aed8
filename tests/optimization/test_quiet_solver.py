"""HiGHS's banner ("Running HiGHS …") stays off the console: it prints when the first
solver of a process is made, before `msg=False` applies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = """
import pulp
from optimization.space import SOLVERS
p = pulp.LpProblem("x", pulp.LpMinimize)
x = pulp.LpVariable("x", 0)
p += x
p += x >= 1
p.solve(SOLVERS["highs"](msg=False))
print("solved", x.value())
"""


def test_highs_prints_no_banner():
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SNIPPET], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    assert "solved 1.0" in done.stdout
    assert "HiGHS" not in done.stdout + done.stderr, done.stdout
