"""Shared fixtures: small simulated L cities written as real data directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forecasting.simulate import City, simulate_city
from pipelines.workflows.builtin import write_city


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Built-in data go to a per-session cache, never the user's."""
    os.environ.setdefault("CIPLAN_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def small_city() -> City:
    """L city at 1 % scale (about 21 k insured a year), 2019-2022."""
    return simulate_city(seed=11, scale=0.01, years=(2019, 2020, 2021, 2022))


@pytest.fixture(scope="session")
def small_dir(small_city, tmp_path_factory) -> Path:
    return write_city(small_city, tmp_path_factory.mktemp("small") / "data")


@pytest.fixture(scope="session")
def tiny_city() -> City:
    """L city at 0.2 % scale, 2019-2021: for input-error tests that rewrite files."""
    return simulate_city(seed=5, scale=0.002)


@pytest.fixture
def tiny_csv_dir(tiny_city, tmp_path) -> Path:
    """A fresh CSV data directory per test, safe to damage."""
    return write_city(tiny_city, tmp_path / "data", fmt="csv")
