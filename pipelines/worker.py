"""A helper process that takes slow, ordered side work (MLflow logging) off the critical
path while this process goes on computing, on the second core.

The helper is forked, so it starts with the modules already imported and costs no new
interpreter. It takes messages in the order they were sent, and it lives and dies with
this process: killed with it (the kernel's parent-death signal), deaf to Ctrl-C (this
process decides), and a fail point it reaches stops this process too, so a fault test that
kills this process kills the pair exactly where a single process would have died.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import traceback
import warnings
from collections.abc import Callable, Iterator

from forecasting import failpoints
from forecasting.errors import UserError

PR_SET_PDEATHSIG = 1  # linux/prctl.h
_FINISH, _ABORT = "ciplan.worker.finish", "ciplan.worker.abort"
# sent to the helper when this process gives up (abort, Ctrl-C while waiting at finish):
# its work raises Aborted where it is, as a Ctrl-C would have raised in one process
_ABORT_SIGNAL = signal.SIGUSR1


class Aborted(Exception):
    """Raised inside the helper's work when this process gives up (its own error): the
    work's context managers close what they opened as failed."""


class Worker:
    """`work(messages)` in a forked helper, which must do nothing that lasts before the
    first message (see `abort`): `send` feeds `messages` (pickled by a feeder
    thread, so sending never waits for the helper), `finish` ends them and returns what
    `work` returned, `abort` makes them raise `Aborted` there. An error in the helper is
    raised here at `finish`: a UserError as it was, anything else as a bug with the
    helper's traceback. Warnings the helper met are re-issued here (in their nearest
    built-in category: `builtin_category`)."""

    def __init__(self, work: Callable[[Iterator], object]):
        ctx = multiprocessing.get_context("fork")
        self._inbox = ctx.Queue()
        self._reply, reply_end = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_helper, args=(work, self._inbox, reply_end,
                                                       os.getpid()), daemon=True)
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork while threads run (BLAS pools); the helper runs
            # only Python, SQLite, matplotlib's Agg and numpy, none of which those hold
            warnings.simplefilter("ignore", DeprecationWarning)
            self._proc.start()
        reply_end.close()  # so that a dead helper reads as EOF here
        self._open, self._sent = True, False

    def send(self, message) -> None:
        self._inbox.put(message)
        self._sent = True

    def finish(self):
        """End the messages; what the work returned (raising what it raised)."""
        return self._close(_FINISH)

    def abort(self) -> None:
        """Give up: the work sees `Aborted` (a helper sent nothing yet is just killed: it
        has done nothing that lasts); wait for the helper to end, ignoring what it says
        (this process is already failing with its own error)."""
        if not self._open:
            return
        if not self._sent:
            self._open = False
            self._proc.kill()
            self._proc.join()
            self._inbox.close()
            self._inbox.cancel_join_thread()
            return
        with contextlib.suppress(Exception):  # the caller's error is the one to report
            self._close(_ABORT)

    def _close(self, sentinel: str):
        self._open = False
        self._inbox.put(sentinel)
        self._inbox.close()
        if sentinel == _ABORT:
            self._interrupt()  # now, not once it has written what is still queued
        try:
            status, value, said = self._reply.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError(f"the helper process died (exit code {self._proc.exitcode})"
                               ) from None
        except BaseException:  # Ctrl-C while it writes: it ends its work as failed, now,
            self._interrupt()  # and never writes on after this process
            try:
                self._proc.join()
            finally:  # a second Ctrl-C: no more waiting
                self._proc.kill()
                self._proc.join()
            raise
        finally:
            # the helper has read all it will (the end, or up to an abort or its death):
            # what is still unsent has no reader, and must not be waited for
            self._inbox.cancel_join_thread()
        self._proc.join()
        for w in said:
            warnings.warn_explicit(*w)
        if status == "user":
            raise UserError(value)
        if status == "bug":
            raise RuntimeError(f"in the helper process:\n{value}")
        return value

    def _interrupt(self) -> None:
        """Raise `Aborted` in the helper's work wherever it is (`_ABORT_SIGNAL`)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._proc.pid, _ABORT_SIGNAL)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self.abort()


def _messages(inbox) -> Iterator:
    """What this process sent, until `finish` (or `abort`, raised as Aborted)."""
    while (message := inbox.get()) != _FINISH:
        if isinstance(message, str) and message == _ABORT:
            _aborted()
        yield message


def _aborted(signum: int | None = None, frame=None) -> None:
    """Raise Aborted in the work, once: an abort arrives twice (the message and the
    signal, in either order), and the second must not cut short the cleanup the first
    started (the runs being ended as FAILED)."""
    signal.signal(_ABORT_SIGNAL, signal.SIG_IGN)
    raise Aborted


def _helper(work, inbox, reply, parent: int) -> None:
    signal.signal(_ABORT_SIGNAL, _aborted)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # died before the line above
        os._exit(1)
    failpoints.stop_also(parent)
    messages = _messages(inbox)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            reply_with = ("ok", work(messages))
        except Aborted:
            reply_with = ("aborted", None)
        except UserError as exc:
            reply_with = ("user", str(exc))
        except BaseException:  # a bug: its traceback goes to the caller
            reply_with = ("bug", traceback.format_exc())
        signal.signal(_ABORT_SIGNAL, signal.SIG_IGN)  # the work is over: nothing to stop
    if reply_with[0] not in ("ok", "aborted"):
        _drain(messages)
    said = [(str(w.message), builtin_category(w.category), w.filename, w.lineno)
            for w in caught]
    reply.send((*reply_with, said))
    reply.close()


def builtin_category(category: type[Warning]) -> type[Warning]:
    """The nearest built-in class of a warning's category (SQLAlchemy's
    SADeprecationWarning: DeprecationWarning), for sending it to the process the helper
    works for: unpickling a library's class would import the library there, after the
    work (SQLAlchemy and MLflow's modules: 0.1 to 0.2 s at the end of `ciplan train`)."""
    return next(c for c in category.__mro__ if c.__module__ == "builtins")


def _drain(messages: Iterator) -> None:
    """Read what is still coming, so that the sender is never left waiting."""
    try:
        for _ in messages:
            pass
    except Aborted:
        pass
