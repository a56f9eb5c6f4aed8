"""Model fits run BLAS and OpenMP on one thread: the matrices of a few hundred cells or
tens of thousands of claimants are far too small for threads, whose start-up and
synchronisation cost more than the work (a 55,000-element dot product takes 2-13 ms on two
threads of a busy machine against 0.01 ms on one)."""

from __future__ import annotations

import functools
import threading

from threadpoolctl import ThreadpoolController

_state = threading.local()  # depth of single_threaded calls in this thread
_controller: list[ThreadpoolController] = []


def _libraries() -> ThreadpoolController:
    """The thread pools of the libraries loaded, found once (a scan of the process's shared
    libraries costs 4 ms, and fits call this hundreds of times). The first call comes from
    a model fit, when scikit-learn, NumPy and SciPy have loaded theirs."""
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0]


def single_threaded(fn):
    """Run `fn` with BLAS and OpenMP limited to one thread (restored afterwards); calls
    inside it pass straight through."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        depth = getattr(_state, "depth", 0)
        if depth:
            return fn(*args, **kwargs)
        _state.depth = 1
        try:
            with _libraries().limit(limits=1):
                return fn(*args, **kwargs)
        finally:
            _state.depth = 0
    return wrapper
