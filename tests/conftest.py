"""Shared fixtures: small simulated L cities written as real data directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forecasting.config import load_project
from forecasting.data.dataset import Dataset, load_data, write_data_dir
from forecasting.data.options import DataOptions
from forecasting.simulate import City, simulate_city
from forecasting.simulate_health import HealthPortfolio, simulate_health
from pipelines.workflows.builtin import write_city

HEALTH_KEYS = ("sex", "district")


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


@pytest.fixture(scope="session")
def health() -> HealthPortfolio:
    """The second portfolio: 20 k members on two-year policies, 2020-2023, keys sex and
    district, small costs, claims by service date, an age x sex interaction."""
    return simulate_health(seed=7, members=20_000)


@pytest.fixture(scope="session")
def health_dir(health, tmp_path_factory) -> Path:
    """Its data directory as a user would bring it: CSV, no scheme.toml (nothing to price),
    a ciplan.toml naming the cohort keys and the currency."""
    out = write_data_dir(tmp_path_factory.mktemp("health") / "data", health.members,
                         health.claims, None, fmt="csv")
    (out / "ciplan.toml").write_text(
        '[cohorts]\nkeys = ["sex", "district"]\n[data]\ncurrency = "EUR"\n', encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def health_ds(health_dir) -> Dataset:
    """The second portfolio loaded with its own ciplan.toml."""
    config = load_project(None, health_dir)
    return load_data(health_dir, DataOptions(spec=config.cohorts.spec()), config)
