"""MLflow's map of installed packages from ciplan's cache: the map MLflow builds itself,
made again when what is installed changes or the file is damaged."""

from __future__ import annotations

import copy
import os

import pytest
from mlflow.utils import requirements_utils

from pipelines.package_map import _cache_file, prime_package_map


@pytest.fixture(scope="module")
def mlflow_map() -> dict:
    """The map as MLflow builds it, from every installed distribution's files."""
    saved = requirements_utils._MODULES_TO_PACKAGES
    requirements_utils._MODULES_TO_PACKAGES = None
    try:
        requirements_utils._init_modules_to_packages_map()
        return copy.deepcopy(requirements_utils._MODULES_TO_PACKAGES)
    finally:
        requirements_utils._MODULES_TO_PACKAGES = saved


@pytest.fixture
def unbuilt(monkeypatch, tmp_path):
    """MLflow before its first model log in this process; a cache of our own; a count of
    the scans of the installed distributions."""
    monkeypatch.setenv("CIPLAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
    monkeypatch.setattr(requirements_utils, "_PACKAGES_TO_MODULES", None)
    scans = []
    scan = requirements_utils.importlib_metadata.packages_distributions

    def counted():
        scans.append(1)
        return scan()

    monkeypatch.setattr(requirements_utils.importlib_metadata, "packages_distributions",
                        counted)
    return scans


def _built() -> dict | None:
    """The map MLflow's requirement check will use."""
    return requirements_utils._MODULES_TO_PACKAGES


def _again(monkeypatch) -> None:
    """A later process: MLflow has not built its map."""
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)


def test_the_cached_map_is_mlflows_own(unbuilt, mlflow_map, monkeypatch):
    prime_package_map()
    assert _built() == mlflow_map
    assert len(unbuilt) == 1 and _cache_file().is_file()
    _again(monkeypatch)
    prime_package_map()
    assert _built() == mlflow_map
    assert len(unbuilt) == 1, "the second process scanned the distributions again"
    # MLflow's requirement check answers from it as from its own map
    assert requirements_utils._check_requirement_satisfied("scikit-learn") is None
    assert requirements_utils._check_requirement_satisfied("scikit-learn==0.0.1") is not None


def test_an_install_makes_it_again(unbuilt, mlflow_map, monkeypatch, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    prime_package_map()
    before = _cache_file()
    (site / "newpkg-1.0.dist-info").mkdir()  # what pip does to a site directory
    os.utime(site, ns=(os.stat(site).st_atime_ns, os.stat(site).st_mtime_ns + 10**9))
    _again(monkeypatch)
    prime_package_map()
    assert _cache_file() != before and len(unbuilt) == 2
    assert _built() == mlflow_map


def test_an_upgrade_in_place_makes_it_again_other_files_do_not(unbuilt, monkeypatch,
                                                                 tmp_path):
    site = tmp_path / "site"
    (site / "pkg-1.0.dist-info").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(site))
    first = _cache_file()
    (site / "report.html").write_text("an output beside", encoding="utf-8")
    assert _cache_file() == first
    meta = site / "pkg-1.0.dist-info"
    os.utime(meta, ns=(os.stat(meta).st_atime_ns, os.stat(meta).st_mtime_ns + 10**9))
    assert _cache_file() != first  # its RECORD rewritten by a reinstall


@pytest.mark.parametrize("damage", ["{not json", '{"sklearn": "scikit-learn"}', "[1, 2]", ""])
def test_a_damaged_file_is_made_again(unbuilt, mlflow_map, monkeypatch, damage):
    prime_package_map()
    _cache_file().write_text(damage, encoding="utf-8")
    _again(monkeypatch)
    prime_package_map()
    assert _built() == mlflow_map and len(unbuilt) == 2
    _again(monkeypatch)
    prime_package_map()  # and the file was put right
    assert len(unbuilt) == 2


def test_a_map_already_built_is_left(unbuilt, monkeypatch):
    built = {"sklearn": ["scikit-learn"]}
    monkeypatch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", built)
    prime_package_map()
    assert requirements_utils._MODULES_TO_PACKAGES is built and not unbuilt


@pytest.mark.parametrize("moved", ["_MODULES_TO_PACKAGES", "_init_modules_to_packages_map"])
def test_an_mlflow_without_the_map_is_left_alone(unbuilt, monkeypatch, moved):
    monkeypatch.delattr(requirements_utils, moved)
    prime_package_map()
    assert not unbuilt and not getattr(requirements_utils, "_MODULES_TO_PACKAGES", None)


def test_an_unwritable_cache_is_not_an_error(unbuilt, mlflow_map, monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    monkeypatch.setenv("CIPLAN_CACHE", str(blocked))  # a file where the folder would go
    prime_package_map()
    assert _built() == mlflow_map
