"""Benchmark helpers: run code in a child process (with its peak memory), print a row."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def in_child(code: str) -> dict:
    """Run Python `code` (which prints one JSON line) in a fresh process; add its peak RSS."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def row(name: str, value: str, target: str = "") -> None:
    print(f"  {name:<58} {value:>14}  {target}")
