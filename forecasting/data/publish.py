"""Output folders published whole: written aside, swapped in by one rename, with a manifest.

Every folder ciplan writes (data directory, forecast, plan, report) is built in a hidden
temporary folder beside its target, `.NAME.tmp.HOST-PID-START.TOKEN`. When it is complete, a
`manifest.json` is written into it (each file with its SHA-256 and size, and the inputs the
folder came from), and it replaces the target in one step: `renameat2(RENAME_EXCHANGE)`
swaps the two folders atomically, so a kill at any instant leaves the target either the old
complete folder or the new complete one. Where the file system cannot exchange, the old
folder is renamed aside first; a kill between the two renames leaves it aside, and the next
publication or reading puts it back.

Readers verify the manifest (`read_manifest`) before they trust a folder, and reuse checks
`reusable_inputs`; temporary folders of dead processes are removed the next time their
target is published or read.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from forecasting.errors import InputError, UserError
from forecasting.failpoints import stop_here

__all__ = ["MANIFEST", "check_out", "glob_escape", "owner_dead", "owner_id", "publish",
           "read_manifest", "reusable_inputs", "write_manifest"]

MANIFEST = "manifest.json"
FORMAT, VERSION = "ciplan.manifest", 1
# what writes each kind of folder, for messages
WRITERS = {"data": "ciplan simulate", "forecast": "ciplan forecast", "plan": "ciplan optimize",
           "report": "ciplan report", "term": "ciplan project",
           "settlements": "ciplan simulate --format settlements"}
HASH_CHUNK = 1 << 22  # bytes read at a time when hashing


# ---------------------------------------------------------------- manifests


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> dict[str, dict]:
    """Every file below `folder` but the manifest: relative POSIX path -> sha256, bytes."""
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {p.relative_to(folder).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
            for p in found}


def content_hash(files: dict[str, dict]) -> str:
    """One SHA-256 over the files' names and hashes: the identity of a folder's content."""
    text = json.dumps({k: v["sha256"] for k, v in sorted(files.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_manifest(folder: Path, kind: str, inputs: dict) -> dict:
    """Write `folder`/manifest.json: the kind of folder, the inputs it came from, each file
    with its SHA-256 and size, and the content hash over them. Returns the manifest."""
    files = _files(Path(folder))
    manifest = {"format": FORMAT, "version": VERSION, "kind": kind,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "inputs": inputs, "files": files, "content_hash": content_hash(files)}
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str),
                                         encoding="utf-8")
    return manifest


def read_manifest(folder: Path, kind: str) -> dict:
    """The verified manifest of a folder of `kind`: every file it lists is present with
    its hash. InputError (one line) for a folder that is missing, incomplete, foreign,
    of another kind, or changed since it was written."""
    folder = Path(folder)
    _settle(folder)
    writer = WRITERS[kind]
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found; expected a `{writer}` output folder")
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST}; expected a complete `{writer}` output "
                         "folder (written whole by this version of ciplan)")
    manifest = _parse(path)
    if manifest.get("kind") != kind:
        raise InputError(f"{path}: a {manifest.get('kind')!r} folder; expected a {kind!r} "
                         f"folder written by `{writer}`")
    for name, entry in manifest["files"].items():
        _check_file(folder, name, entry)
    return manifest


def _parse(path: Path) -> dict:
    """manifest.json as a dict of the expected shape, or a one-line InputError."""
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable ciplan manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a ciplan manifest (expected format {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise InputError(f"{path}: manifest version {manifest.get('version')!r}; this ciplan "
                         f"reads version {VERSION}")
    if not isinstance(manifest.get("files"), dict) or not isinstance(
            manifest.get("inputs"), dict):
        raise InputError(f"{path}: not a ciplan manifest (no 'files' or 'inputs' table)")
    return manifest


def _check_file(folder: Path, name: str, entry) -> None:
    """One listed file is inside the folder, present and unchanged."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not isinstance(entry, dict):
        raise InputError(f"{folder / MANIFEST}: lists {name!r}, which is not a file of the "
                         "folder")
    path = folder.joinpath(*rel.parts)
    if not path.is_file():
        raise InputError(f"{path}: listed in {MANIFEST} but missing; the folder is "
                         "incomplete")
    if path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
        raise InputError(f"{path}: does not match the SHA-256 in {MANIFEST}; the file was "
                         "changed or damaged after ciplan wrote it")


def reusable_inputs(folder: Path, kind: str) -> dict | None:
    """The inputs of a complete, unchanged folder of `kind` (for reuse), else None."""
    try:
        manifest = read_manifest(folder, kind)
    except InputError:
        return None
    return {**manifest["inputs"], "content_hash": manifest.get("content_hash")}


# ---------------------------------------------------------------- publishing


def check_out(target: Path, kind: str) -> Path:
    """`target` may receive a `kind` folder: absent, empty, or a ciplan folder of that
    kind. Called before any work, so a wrong --out costs nothing; UserError otherwise."""
    target = Path(target)
    if target.is_symlink():
        raise UserError(f"{target}: a symbolic link; --out expects a folder path")
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a folder; --out expects a folder "
                        "(ciplan replaces it whole)")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{target}: {parent} is a file, not a folder")
            break
    if target.is_dir() and any(target.iterdir()):
        found = _kind_of(target)
        if found != kind:
            what = (f"a ciplan {found} folder" if found else
                    f"a folder ciplan did not write (no {MANIFEST})")
            raise UserError(f"{target}: {what}; ciplan replaces --out whole, so give a new "
                            f"or empty folder, or a `{WRITERS[kind]}` output folder")
    return target


def _kind_of(folder: Path) -> str | None:
    """The kind its manifest names, or None when it has no readable manifest."""
    try:
        return _parse(folder / MANIFEST).get("kind")
    except InputError:
        return None


@contextlib.contextmanager
def publish(target: Path, kind: str, inputs: dict) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; when the block ends without error, write
    its manifest (kind, `inputs`, file hashes) and swap it in place of `target` whole.

    On an error nothing changes at `target`; an OSError (disk full, permission) becomes
    a one-line UserError naming the target.
    """
    target = check_out(target, kind)
    tmp = _stage(target)
    try:
        yield tmp
        write_manifest(tmp, kind, inputs)
        stop_here(f"publish:{target.name}:swap")
        _swap(tmp, target)
        stop_here(f"publish:{target.name}:swapped")
    except OSError as exc:
        raise UserError(f"{target}: cannot write the output ({exc.strerror or exc}); "
                        "nothing was written") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new folder if not swapped, else the old


def _stage(target: Path) -> Path:
    """A fresh temporary folder beside `target`, after removing stale ones."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _settle(target)
        tmp = target.parent / f".{target.name}.tmp.{owner_id()}.{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise UserError(f"{target}: cannot write the output ({exc.strerror or exc}); "
                        "nothing was written") from None
    return tmp


def owner_id() -> str:
    """This process as HOST-PID-START: HOST a short hash of the host name, START the
    process's start time (Linux; 0 elsewhere), so a reused process id is not mistaken for
    the process that left something behind."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"{host}-{os.getpid()}-{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def owner_dead(owner: str) -> bool:
    """Whether the process `owner` (an owner_id) is known to be gone: of this host, and
    its process id is free or now another process's. Unknown hosts count as alive."""
    host, pid, start = ([*owner.split("-"), "", ""])[:3]
    if host != owner_id().split("-")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return start not in ("0", _start_time(int(pid)))


def _settle(target: Path) -> None:
    """Finish what a killed publication of `target` left: an old folder set aside goes
    back when the target is missing; temporary folders of dead processes are removed."""
    if not target.parent.is_dir():
        return
    for tag in ("old", "tmp"):
        prefix = f".{target.name}.{tag}."
        for leftover in sorted(target.parent.glob(f"{glob_escape(prefix)}*")):
            owner = leftover.name[len(prefix):].rsplit(".", 1)[0]
            if not owner_dead(owner):
                continue
            if tag == "old" and not target.exists():
                os.rename(leftover, target)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


def glob_escape(text: str) -> str:
    """`text` with glob's special characters ([, *, ?) matched literally."""
    return "".join(f"[{c}]" if c in "[*?" else c for c in text)


def _swap(new: Path, target: Path) -> None:
    """Put folder `new` at `target` in one step; afterwards `new` holds the old folder
    (or nothing, when there was none)."""
    if not target.exists():
        os.rename(new, target)
        return
    if not _exchange(new, target):
        _swap_by_renames(new, target)


AT_FDCWD, RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Exchange two paths atomically (Linux renameat2); False where unsupported."""
    libc = _libc()
    if libc is None:
        return False
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _libc():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "renameat2") else None


def _swap_by_renames(new: Path, target: Path) -> None:
    """Where folders cannot be exchanged: the old one aside, the new one in, the old one
    back to `new`'s name. A kill between the first two leaves the old folder aside, which
    the next `_settle` of the target puts back."""
    aside = target.parent / f".{target.name}.old.{owner_id()}.{secrets.token_hex(4)}"
    os.rename(target, aside)
    stop_here(f"publish:{target.name}:aside")
    os.rename(new, target)
    os.rename(aside, new)
