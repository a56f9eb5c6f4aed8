"""Model fits run BLAS and OpenMP on one thread: the matrices of a few hundred cells or
tens of thousands of claimants are far too small for threads, whose start-up and
synchronisation cost more than the work (a 55,000-element dot product takes 2-13 ms on two
threads of a busy machine against 0.01 ms on one)."""

from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def single_threaded(fn):
    """Run `fn` with BLAS and OpenMP limited to one thread (restored afterwards)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(1):
            return fn(*args, **kwargs)
    return wrapper
