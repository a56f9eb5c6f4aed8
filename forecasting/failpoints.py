"""Fail points: named places in a run where the fault tests stop the process to kill it.

`stop_here(name)` does nothing unless the environment variable CIPLAN_STOP_AT names this
place. Then the process stops itself (SIGSTOP), and the test kills it there with SIGKILL,
exactly as a crash or an operator's `kill -9` would, before it runs ciplan again and
checks what the next run makes of what was left. Names: `train:candidate`,
`train:champions`, `forecast:write`, `propose:<A|B|C|objective>`, `report:write`, and
`publish:<folder>:swap` / `publish:<folder>:swapped` / `publish:<folder>:aside` around the
renames that publish an output folder.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "stop_also", "stop_here"]

ENV = "CIPLAN_STOP_AT"
_also: list[int] = []  # in a helper process: the process it works for


def stop_here(name: str) -> None:
    """Stop this process (SIGSTOP) if $CIPLAN_STOP_AT is `name`; otherwise nothing. In a
    helper process, the process it works for stops first: the test kills that one."""
    if os.environ.get(ENV) == name:
        for pid in _also:
            os.kill(pid, signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)


def stop_also(pid: int) -> None:
    """Make `stop_here` stop process `pid` too (called by a helper process it forked,
    which dies with it)."""
    _also[:] = [pid]
