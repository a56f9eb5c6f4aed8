"""The built-in L-city data: simulated once per (seed, scale, years) into a cache folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forecasting.data.dataset import write_data_dir
from pipelines.conventions import cache_root

if TYPE_CHECKING:  # the simulation needs SciPy: imported when a city is made, not to find one
    from forecasting.simulate import City

# Bump when the generating process changes, so stale caches are not reused.
SIM_VERSION = 3
DEFAULT_SEED = 2019


def write_city(city: City, out: Path, fmt: str = "parquet") -> Path:
    """Write a simulated city as a data directory, with truth.json beside the data."""
    t = city.truth
    return write_data_dir(out, city.members, city.claims, city.scheme, fmt,
                          {"truth.json": city.truth_dict()},
                          {"simulated": {"seed": t.seed, "scale": t.scale,
                                         "years": list(t.years)}})


def builtin_data(scale: float = 1.0, seed: int = DEFAULT_SEED,
                 years: tuple[int, ...] = (2019, 2020, 2021)) -> Path:
    """The data directory of the built-in L city, generated on first use."""
    name = f"lcity-v{SIM_VERSION}-seed{seed}-scale{scale:g}-{years[0]}-{years[-1]}"
    path = cache_root() / name
    if not (path / "scheme.toml").exists():
        from forecasting.simulate import simulate_city

        write_city(simulate_city(seed=seed, scale=scale, years=years), path)
    return path
