"""Output folders published whole: a manifest that catches any change, the old folder
intact after a failure, and after a real kill -9 at each rename either the old complete
folder or the new complete one, never a mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forecasting.data.publish import (
    check_out,
    publish,
    read_manifest,
    reusable_inputs,
    write_manifest,
)
from forecasting.errors import InputError, UserError
from forecasting.failpoints import ENV

ROOT = Path(__file__).resolve().parents[3]
FILES = ("a.txt", "sub/b.txt", "c.txt")


def _fill(folder: Path, version: str, names=FILES) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"{version} {name}\n" * 1000)


def _version(folder: Path) -> str:
    """Which version a verified folder holds; fails on a mix or a damaged folder."""
    read_manifest(folder, "data")
    found = {(folder / n).read_text().split(" ", 1)[0] for n in FILES if (folder / n).exists()}
    assert len(found) == 1, f"a mix of versions: {found}"
    return found.pop()


@pytest.fixture
def old(tmp_path) -> Path:
    target = tmp_path / "out"
    with publish(target, "data", {"version": "old"}) as tmp:
        _fill(tmp, "old", (*FILES, "only-old.txt"))
    return target


def test_publish_replaces_the_folder_whole(old):
    with publish(old, "data", {"version": "new"}) as tmp:
        _fill(tmp, "new")
    assert _version(old) == "new"
    assert not (old / "only-old.txt").exists()  # nothing of the old folder lingers
    assert reusable_inputs(old, "data")["version"] == "new"
    assert [p.name for p in old.parent.iterdir()] == ["out"]  # no temporary folder left


def test_a_failure_leaves_the_old_folder_untouched(old):
    with pytest.raises(RuntimeError), publish(old, "data", {}) as tmp:
        _fill(tmp, "new")
        raise RuntimeError("half-way")
    assert _version(old) == "old" and (old / "only-old.txt").exists()
    assert [p.name for p in old.parent.iterdir()] == ["out"]


@pytest.mark.parametrize("damage", ["change", "remove", "truncate"])
def test_the_manifest_catches_a_changed_file(old, damage):
    path = old / "sub" / "b.txt"
    if damage == "change":
        path.write_text(path.read_text().replace("old", "new", 1))
    elif damage == "remove":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"sub/b.txt: (listed in manifest.json but missing|"
                                         r"does not match the SHA-256)"):
        read_manifest(old, "data")
    assert reusable_inputs(old, "data") is None


def test_a_manifest_may_not_point_outside_its_folder(old, tmp_path):
    (tmp_path / "secret").write_text("x")
    write_manifest(old, "data", {})
    text = (old / "manifest.json").read_text().replace('"a.txt"', '"../secret"')
    (old / "manifest.json").write_text(text)
    with pytest.raises(InputError, match="not a file of the folder"):
        read_manifest(old, "data")


def test_check_out_refuses_what_it_must_not_replace(tmp_path, old):
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        check_out(tmp_path / "file", "data")
    with pytest.raises(UserError, match="a folder ciplan did not write"):
        check_out(tmp_path / "mine", "data")
    with pytest.raises(UserError, match="a ciplan data folder"):
        check_out(old, "report")
    check_out(old, "data")
    check_out(tmp_path / "new", "data")


def test_disk_full_is_one_line_and_leaves_nothing(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does."""
    target = tmp_path / "out"
    with (pytest.raises(UserError, match=r"out: cannot write the output .*No space left"),
          publish(target, "data", {}) as tmp):
        (tmp / "x").symlink_to("/dev/full")
        with open(tmp / "x", "w") as fh:
            fh.write("data")
    assert list(tmp_path.iterdir()) == []


KILLED = textwrap.dedent("""
    import sys
    from pathlib import Path
    from forecasting.data import publish as p
    from tests.forecasting.data.test_publish import _fill
    if sys.argv[2] == "renames":  # the way for file systems that cannot exchange folders
        p._exchange = lambda a, b: False
    with p.publish(Path(sys.argv[1]), "data", {"version": "new"}) as tmp:
        _fill(tmp, "new")
""")


def _kill_at(stage: str, target: Path, way: str) -> None:
    """Publish a new version of `target` in a real process stopped at `stage`, then kill
    it there with SIGKILL."""
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(target), way], cwd=ROOT,
                            env={**os.environ, ENV: f"publish:{target.name}:{stage}"})
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), f"the process did not reach {stage} (status {status})"
    proc.kill()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("way", "stage", "expected"), [
    ("exchange", "swap", "old"), ("exchange", "swapped", "new"),
    ("renames", "swap", "old"), ("renames", "aside", "old"), ("renames", "swapped", "new")])
def test_a_kill_at_each_rename_leaves_old_or_new_never_a_mix(old, way, stage, expected):
    _kill_at(stage, old, way)
    # what the next reader sees: one complete version (an old folder set aside by a kill
    # between two renames is put back), and no temporary folder of the dead process
    assert _version(old) == expected
    assert [p.name for p in old.parent.iterdir()] == ["out"]
    with publish(old, "data", {"version": "again"}) as tmp:
        _fill(tmp, "again")
    assert _version(old) == "again"
