"""MLflow's map from import names to installed distributions, kept in ciplan's cache.

Logging a model makes MLflow check the model's requirements against what is installed;
it builds that map by reading the file list of every installed distribution (about half
a second, a tenth of `ciplan train`'s logging). What is installed changes only when a
distribution's metadata on the import path does (pip adds, renames and removes
`*.dist-info` folders), so the map is kept under a key of MLflow's version and that
metadata's names and modification times, and given back to MLflow the next time. A
missing, damaged or stale file is made again; an MLflow without the map (its internals
moved) is left to build its own."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path

from pipelines.conventions import cache_root

__all__ = ["prime_package_map"]

METADATA = (".dist-info", ".egg-info", ".egg-link", ".pth")  # what importlib.metadata reads


def prime_package_map() -> None:
    """Give MLflow its module -> distributions map from the cache, or build it (MLflow's
    own way) and cache it; nothing when MLflow has built it already or has no such map."""
    from mlflow.utils import requirements_utils

    build = getattr(requirements_utils, "_init_modules_to_packages_map", None)
    if build is None or getattr(requirements_utils, "_MODULES_TO_PACKAGES", False) is not None:
        return
    path = _cache_file()
    cached = _read(path)
    if cached is not None:
        requirements_utils._MODULES_TO_PACKAGES = cached
        return
    build()
    _write(path, requirements_utils._MODULES_TO_PACKAGES)


def _cache_file() -> Path:
    """The cache file of this MLflow and this import path as installed now."""
    import mlflow

    key = hashlib.sha256(json.dumps([mlflow.__version__, sys.prefix, _path_state()])
                         .encode()).hexdigest()[:24]
    return cache_root() / "mlflow-packages" / f"{key}.json"


def _path_state() -> list[tuple[str, str, int]]:
    """The distributions' metadata on the import path, each with its modification time
    (ns): installing, upgrading or removing a distribution adds, renames or rewrites one
    of them (an editable install's .pth or .egg-info too); other files in those folders,
    such as outputs in the current folder, leave the key as it was."""
    state = []
    for entry in sys.path:
        folder = os.path.abspath(entry or ".")
        with contextlib.suppress(OSError), os.scandir(folder) as found:
            state.extend((folder, item.name, item.stat().st_mtime_ns) for item in found
                         if item.name.endswith(METADATA))
    return sorted(state)


def _read(path: Path) -> dict[str, list[str]] | None:
    """The cached map, or None when missing or not a map of names to lists of names."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(p, str) for p in v)
            for k, v in found.items()):
        return None
    return found


def _write(path: Path, found: dict) -> None:
    """Put the map in place whole (a reader sees no file or the whole file); a cache that
    cannot be written is not an error."""
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with contextlib.suppress(OSError):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({k: list(v) for k, v in found.items()}),
                           encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
