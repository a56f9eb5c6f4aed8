"""single_threaded: one thread inside (nested calls too), the pools restored after."""

from __future__ import annotations

import numpy  # noqa: F401 - loads a BLAS with a thread pool
import sklearn.ensemble  # noqa: F401 - loads OpenMP
from threadpoolctl import threadpool_info

from forecasting.models.threads import single_threaded


def _threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info()]


def test_one_thread_inside_restored_after():
    before = _threads()
    seen = []

    @single_threaded
    def inner():
        seen.append(_threads())

    @single_threaded
    def outer():
        seen.append(_threads())
        inner()
        seen.append(_threads())

    outer()
    assert before and len(seen) == 3
    assert all(n == 1 for threads in seen for n in threads)
    assert _threads() == before
