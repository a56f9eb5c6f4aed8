"""How the `ciplan` process starts and ends: its imports without Python's cyclic garbage
collector, and no tearing the interpreter down at exit.

The cyclic collector re-scans every object the imports have made (about 400,000 with
MLflow, scikit-learn and pandas) each time the heap grows by a quarter, so importing them
costs a third more with it: `ciplan train` spent 1.3 s of CPU in it, a quarter of its
wall time. The command therefore imports with the collector off, then freezes what the
imports made (modules, classes and functions live as long as the process) and collects
from there on as usual: a closed figure, which holds reference cycles, is freed at once.
A library user's process (a notebook, the tests) keeps its collector as it is: only the
command line changes it."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator

# What the command's process asks of NumPy unless its environment says otherwise:
# - one BLAS thread: ciplan's matrices (cells or claimants by a few dozen design columns)
#   are too small for threads (the fits limit them anyway: forecasting.models.threads),
#   and OpenBLAS's idle threads spin on the core the training's helper logs on (0.3 s of
#   CPU in `ciplan train`);
# - no transparent huge pages for large arrays: where the kernel compacts memory to find
#   them (THP "defrag" on madvise, a common default), the duplicate check's first pass
#   over 6.1 M member ids took 0.1 to 0.8 s, mostly system time and varying from run to
#   run; in ordinary pages 0.2 to 0.4 s.
NUMPY_SETTINGS = {"OPENBLAS_NUM_THREADS": "1", "NUMPY_MADVISE_HUGEPAGE": "0"}
_command_line = False  # set by `start`: this is the ciplan command's process (or a helper)
_importing = False  # inside `importing`
_collected = False  # `collect` has run: the command line's own imports are frozen


def start() -> None:
    """Before the command line's imports: no cyclic garbage collection until `collect`;
    BLAS on one thread and NumPy's arrays in ordinary pages (`NUMPY_SETTINGS`), unless
    the environment says otherwise."""
    global _command_line
    _command_line = True
    gc.disable()
    for name, value in NUMPY_SETTINGS.items():  # read when NumPy loads: they come first
        os.environ.setdefault(name, value)


def collect() -> None:
    """In the command's process, once its imports are done: what exists now is frozen (the
    collector never scans it again) and collection resumes for what is made from here."""
    global _collected
    if _command_line:
        gc.freeze()
        gc.enable()
        _collected = True


@contextlib.contextmanager
def importing() -> Iterator[None]:
    """Heavy imports (a command's workflow, MLflow in a helper) without collections, then
    `collect` if the block imported a module; in a library user's process, nothing
    changes. A block that imports nothing new (`tracking.connect` at each call) freezes
    nothing: `gc.freeze` takes every object there is, and the command's data and its
    garbage in reference cycles (a closed figure) would never be freed."""
    global _importing
    if not _command_line or _importing:  # a library user's process, or nested: as it is
        yield
        return
    _importing, modules = True, len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        _importing = False
        if len(sys.modules) > modules or not _collected:
            collect()
        else:
            gc.enable()


def main() -> None:
    """Entry point of the `ciplan` console script: `start`, then the command line."""
    start()
    from pipelines.cli import main as cli_main

    cli_main()


def end(code) -> None:
    """End the process as sys.exit(code) would, without tearing the interpreter down: other
    threads are joined, exit handlers run (MLflow's, logging's) and the streams flushed,
    but the modules of MLflow, SQLAlchemy, pandas and scikit-learn are not freed object by
    object, which takes about a second the operating system does at once."""
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    # what the interpreter does first at exit: executors told to stop, other threads joined
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
