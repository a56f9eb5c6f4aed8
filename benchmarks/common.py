"""Timing helpers: wall time in-process, peak memory of a child process."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable


def timed(fn: Callable, repeat: int = 1) -> tuple[float, object]:
    """Best wall time (s) of `repeat` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def in_child(code: str) -> dict:
    """Run Python `code` (which prints one JSON line) in a fresh process; add its peak RSS."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def row(name: str, value: str, target: str = "") -> None:
    print(f"  {name:<58} {value:>14}  {target}")
