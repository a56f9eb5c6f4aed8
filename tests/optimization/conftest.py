"""Forecasts to optimise on: the small simulated city, and a small plan space."""

from __future__ import annotations

import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.models.claims import ClaimsModel
from forecasting.simulate import lcity_plan
from optimization.space import load_space


@pytest.fixture(scope="session")
def small_forecast(small_city):
    cells = aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))
    return ClaimsModel().fit(cells.until(2021)).forecast(2022)


@pytest.fixture(scope="session")
def status_quo():
    return lcity_plan(60.0)


@pytest.fixture(scope="session")
def space():
    return load_space()


@pytest.fixture(scope="session")
def small_space(space):
    """Few choices, so every plan can be enumerated."""
    return space.model_copy(update={
        "deductible": space.deductible.model_copy(update={"candidates": (12_000.0, 18_000.0)}),
        "cap": space.cap.model_copy(update={"candidates": (280_000.0, None)}),
        "bands": space.bands.model_copy(update={"ratio_min": 0.55, "ratio_max": 0.80}),
    })
