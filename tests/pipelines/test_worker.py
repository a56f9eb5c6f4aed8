"""The helper process: messages in order, its errors raised here (a user's mistake as one,
a bug with its traceback), Ctrl-C and a kill of this process end it, abort is prompt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from forecasting.errors import UserError
from pipelines.worker import _ABORT_SIGNAL as ABORT_SIGNAL
from pipelines.worker import Aborted, Worker, builtin_category
from tests.cli import ROOT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_messages_arrive_in_order_and_the_result_returns():
    with Worker(lambda messages: [m * 2 for m in messages]) as w:
        for i in range(100):
            w.send(i)
        assert w.finish() == [i * 2 for i in range(100)]


def test_a_user_error_there_is_one_here_and_sending_never_blocks():
    def work(messages):
        next(messages)
        raise UserError("the store is damaged")

    w = Worker(work)
    for _ in range(50):  # 50 MB: far beyond a pipe's buffer, sent after the error
        w.send(bytes(1 << 20))
    with pytest.raises(UserError, match=r"^the store is damaged$"):
        w.finish()


def test_a_bug_there_is_a_bug_here_with_its_traceback():
    def work(messages):
        return {}["missing"]

    with pytest.raises(RuntimeError, match=r"(?s)in the helper process.*KeyError: 'missing'"):
        Worker(work).finish()


def test_warnings_there_are_issued_here():
    def work(messages):
        warnings.warn("careful", UserWarning, stacklevel=1)
        return list(messages)

    w = Worker(work)
    with pytest.warns(UserWarning, match="careful"):
        assert w.finish() == []


def test_a_library_warning_is_issued_in_its_built_in_category_importing_nothing():
    # unpickling the library's class here would import the library here, after the work
    # (SQLAlchemy's, when MLflow's store warned in `ciplan train`: 0.1-0.2 s at its end)
    module = "tests.pipelines.helper_warning"

    def work(messages):
        from tests.pipelines.helper_warning import HelperWarning

        warnings.warn("noload is deprecated", HelperWarning, stacklevel=1)
        return list(messages)

    assert module not in sys.modules
    w = Worker(work)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        w.finish()
    assert [(x.category, str(x.message)) for x in said] == [
        (DeprecationWarning, "noload is deprecated")]
    assert module not in sys.modules


def test_the_built_in_category_of_a_warning_class():
    from sqlalchemy.exc import SADeprecationWarning

    assert builtin_category(SADeprecationWarning) is DeprecationWarning
    assert builtin_category(UserWarning) is UserWarning
    assert builtin_category(type("Mine", (RuntimeWarning,), {})) is RuntimeWarning


@pytest.mark.parametrize("twice", [False, True])
def test_abort_after_sending_raises_aborted_in_the_work_once(tmp_path, twice):
    """The work sees Aborted and cleans up; an abort reaches the helper twice (the message,
    the signal, in either order), and the second must not cut that cleanup short."""
    seen, ready = tmp_path / "cleaned", tmp_path / "ready"

    def work(messages):
        try:
            ready.touch()
            for _ in messages:
                pass
        except Aborted:
            if twice:  # the other half of the abort, arriving now
                os.kill(os.getpid(), ABORT_SIGNAL)
                time.sleep(0.2)
            seen.write_text("whole")
            raise

    w = _started(work, ready)
    w.abort()
    assert seen.read_text() == "whole"
    assert not _alive(w._proc.pid)


def _started(work, ready: Path) -> Worker:
    """A worker sent one message, once its work has touched `ready`: an abort may come
    anywhere, and a test's comes inside the work (see Worker: nothing lasts before it)."""
    w = Worker(work)
    w.send("first")
    deadline = time.time() + 30
    while not ready.exists():
        assert time.time() < deadline, "the work never started"
        time.sleep(0.01)
    return w


def test_abort_before_sending_ends_the_helper_at_once():
    w = Worker(lambda messages: time.sleep(60))  # still importing, say
    t = time.perf_counter()
    with pytest.raises(ValueError, match="bad data"), w:
        raise ValueError("bad data")
    assert time.perf_counter() - t < 10
    assert not _alive(w._proc.pid)


def test_the_helper_dies_with_this_process_and_ignores_ctrl_c(tmp_path):
    """A process starts a helper, which writes its pid; Ctrl-C (SIGINT to the helper)
    leaves it running; killing the process (SIGKILL) kills the helper too."""
    pid_file = tmp_path / "helper.pid"
    script = textwrap.dedent(f"""
        import os, time
        from pipelines.worker import Worker
        def work(messages):
            open({str(pid_file)!r}, "w").write(str(os.getpid()))
            time.sleep(120)
        w = Worker(work)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.time() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.time() < deadline, "the helper never started"
            time.sleep(0.05)
        helper = int(pid_file.read_text())
        os.kill(helper, signal.SIGINT)
        time.sleep(0.5)
        assert _alive(helper)
        proc.kill()
        proc.wait()
        deadline = time.time() + 10
        while _alive(helper):
            assert time.time() < deadline, "the helper outlived the process"
            time.sleep(0.05)
    finally:
        proc.kill()


def test_a_helper_opens_its_own_store_connections(tmp_path):
    """A connection pooled by this process before the fork is not used by the helper
    (SQLite forbids it); the helper's own is, and this process keeps its own."""
    from sqlalchemy import create_engine, text

    from pipelines.tracking import own_connections

    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as c:
        c.execute(text("CREATE TABLE t (x INTEGER)"))
        c.commit()
        ours = c.connection.dbapi_connection

    def work(messages):
        own_connections()
        with engine.connect() as c:
            c.execute(text("INSERT INTO t VALUES (1)"))
            c.commit()
            return c.connection.dbapi_connection is ours

    assert Worker(work).finish() is False
    with engine.connect() as c:
        assert c.connection.dbapi_connection is ours
        assert c.execute(text("SELECT x FROM t")).scalars().all() == [1]


def test_a_helper_that_died_is_an_error_here_not_a_hang(tmp_path):
    """A helper killed (the OOM killer, a crash in a C library) while more was queued for it
    than a pipe holds: finish reports it instead of waiting for the queue forever."""
    script = textwrap.dedent("""
        import os
        from pipelines.worker import Worker
        def work(messages):
            next(messages)
            os._exit(3)
        w = Worker(work)
        for _ in range(8):
            w.send(bytes(1 << 20))
        try:
            w.finish()
        except RuntimeError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert "the helper process died (exit code 3)" in out.stdout, out.stderr


def _ctrl_c_in(seconds: float) -> None:
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def test_ctrl_c_while_the_helper_finishes_ends_its_work_as_aborted(tmp_path):
    """Ctrl-C here while finish waits: the work sees Aborted at once (its runs end FAILED)
    and the helper is gone before the Ctrl-C goes on (it never writes after this process
    let go of the store lock)."""
    seen = tmp_path / "aborted"

    def work(messages):
        list(messages)
        try:
            time.sleep(60)  # writing the last records
        except Aborted:
            seen.write_text("yes")
            raise

    w = Worker(work)
    w.send("first")
    t = time.perf_counter()
    try:
        _ctrl_c_in(0.5)
        with pytest.raises(KeyboardInterrupt), w:
            w.finish()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert not _alive(w._proc.pid)
    assert seen.read_text() == "yes"
    assert time.perf_counter() - t < 30


def test_abort_is_prompt_with_records_still_queued(tmp_path):
    """Aborting while the helper is behind: its work stops where it is, not after writing
    what was still queued."""
    done = tmp_path / "done"

    def work(messages):
        for m in messages:
            time.sleep(1)  # a slow write
            with done.open("a") as fh:
                fh.write(f"{m[0]}\n")

    w = Worker(work)
    for i in range(30):
        w.send((i, bytes(1 << 20)))  # 30 MB: more than a pipe holds stays unsent
    time.sleep(0.5)
    t = time.perf_counter()
    w.abort()
    assert time.perf_counter() - t < 10
    assert not _alive(w._proc.pid)
    assert len(done.read_text().split() if done.exists() else []) < 5
