"""The ciplan process: imports without the cyclic collector, collection afterwards (closed
figures freed), library users' processes untouched, and the console script starting so."""

from __future__ import annotations

import gc
import subprocess
import sys
import tomllib

from pipelines import process
from tests.cli import ROOT

# a command's process: start, its imports, then what it makes; prints what a test checks
COMMAND = """
import gc, json, weakref
from pipelines import process
process.start()
during = gc.isenabled()
with process.importing():
    from pipelines.report import plots
    import pandas as pd
after = {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
by = pd.DataFrame({"observed": [0.1, 0.2], "predicted": [0.1, 0.3]}, index=["a", "b"])
refs = []
for _ in range(60):
    fig = plots.observed_vs_predicted(by, "observed", "predicted", "t", "CNY")
    fig.canvas.draw()
    plots.close(fig)
    refs.append(weakref.ref(fig))
    del fig
alive = sum(r() is not None for r in refs)
print(json.dumps({"during": during, **after, "alive": alive}))
"""


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=300).stdout.strip().splitlines()[-1]


def test_command_imports_without_collector_then_collects_closed_figures():
    import json

    got = json.loads(_run(COMMAND))
    assert got["during"] is False  # imports: no collections
    assert got["enabled"] is True and got["frozen"] > 10_000  # the imports' objects frozen
    # figures hold reference cycles: only the collector frees them once closed (with it
    # off for the whole command, all 60 would still be alive; with it, only the last few
    # wait for the next collection)
    assert got["alive"] <= 20, got


def test_library_process_keeps_its_collector():
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    with process.importing():
        import json  # noqa: F401
    process.collect()
    assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, frozen)


def test_console_script_and_module_start_the_process():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ciplan"] == "pipelines.process:main"
    # `python -m pipelines.cli`: the collector is off before the command line's imports
    code = ("import atexit, gc, runpy, sys; import pipelines.process as p; "
            "atexit.register(lambda: print(p._command_line, gc.isenabled())); "
            "sys.argv = ['ciplan', '--help']; "
            "runpy.run_module('pipelines.cli', run_name='__main__')")
    assert _run(code) == "True False"  # --help runs no command: nothing to collect after


def test_nested_imports_collect_only_at_the_end():
    code = ("import gc; from pipelines import process; process.start(); process.collect()\n"
            "with process.importing():\n"
            "    with process.importing():\n"
            "        pass\n"
            "    inner = gc.isenabled()\n"
            "print(inner, gc.isenabled())")
    assert _run(code) == "False True"


# the command's imports done; then garbage in a reference cycle (as a closed figure is)
# and a block whose modules were imported already (`tracking.connect` at each call)
AGAIN = """
import gc, weakref
from pipelines import process
process.start()
process.collect()
class Node:
    pass
def cycle():
    a = Node(); a.me = a
    return a
dead = cycle(); dead_ref = weakref.ref(dead); del dead   # garbage not yet collected
live = cycle(); live_ref = weakref.ref(live)            # alive during the block
frozen = gc.get_freeze_count()
with process.importing():
    import contextlib  # imported already (by pipelines.process): nothing new made
same = gc.get_freeze_count() == frozen
del live
gc.collect()
freed = (dead_ref() is None, live_ref() is None)
with process.importing():
    import fractions  # a new module: frozen with what it made
print(same, *freed, gc.get_freeze_count() > frozen)
"""


def test_importing_what_is_imported_freezes_nothing_of_the_command():
    # freezing is for what lives as long as the process: a block that imports nothing new
    # (`connect` at every call of a run) must not freeze the command's garbage or data,
    # which the collector would then never free
    assert _run(AGAIN) == "True True True True"


# NumPy in a command's process: one BLAS thread and no huge pages, unless asked otherwise
NUMPY_STATE = """
import json, os, sys
from pipelines import process
process.start()
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_info
blas = [p["num_threads"] for p in threadpool_info() if p["internal_api"] == "openblas"]
print(json.dumps({"blas": blas, "madvise": os.environ["NUMPY_MADVISE_HUGEPAGE"],
                  "huge": bool(np._core.multiarray._get_madvise_hugepage())}))
"""


def _numpy_state(env: dict) -> dict:
    import json
    import os

    out = subprocess.run([sys.executable, "-c", NUMPY_STATE], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300,
                         env={k: v for k, v in os.environ.items()
                              if k not in process.NUMPY_SETTINGS} | env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_command_runs_numpy_on_one_blas_thread_without_huge_pages():
    got = _numpy_state({})
    assert len(got["blas"]) == 2 and set(got["blas"]) == {1}  # NumPy's and SciPy's OpenBLAS
    assert got["madvise"] == "0" and got["huge"] is False


def test_the_environment_overrides_the_numpy_settings():
    got = _numpy_state({"OPENBLAS_NUM_THREADS": "2", "NUMPY_MADVISE_HUGEPAGE": "1"})
    assert set(got["blas"]) == {2} and got["madvise"] == "1"
