"""Running `ciplan` in tests, in this process (CliRunner) or as a real process, and checking
what bad input must get: exit code 2, one line `Error: …` on stderr, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def snapshot(root: Path) -> dict[str, int]:
    """Every path below `root` with its modification time (links not followed)."""
    return {str(p): p.lstat().st_mtime_ns for p in Path(root).rglob("*")}


def ciplan_process(args: list[str], env: dict[str, str] | None = None,
                   **kwargs) -> subprocess.CompletedProcess:
    """`python -m pipelines.cli ARGS` as a process of its own, from the checkout."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=600, check=False, **kwargs)


def one_line_error(exit_code: int, stderr: str, *fragments: str) -> str:
    """The single `Error: …` line of a run that failed on bad input, holding `fragments`."""
    err = stderr.strip()
    assert exit_code == 2, (exit_code, stderr[-3000:])
    assert err.startswith("Error: ") and "\n" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def fails_cleanly(args: list[str], watched: Path, *fragments: str) -> str:
    """Run ciplan in this process on bad input; one line naming `fragments`, and nothing
    written anywhere under `watched`."""
    before = snapshot(watched)
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    err = one_line_error(result.exit_code, result.stderr, *fragments)
    assert snapshot(watched) == before
    return err
