"""Several simulated cities as one data set: hive-partitioned Parquet by year and region
(members/year=2021/region=R07/part-0.parquet), the shape a provincial scheme or a national
insurer keeps its data in."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from forecasting.data.publish import publish
from forecasting.scheme.in_force import Scheme, scheme_to_toml
from forecasting.simulate import simulate_city

ID_STRIDE = 10**9  # member ids of region r start at r * ID_STRIDE: unique across regions


def region_name(r: int) -> str:
    return f"R{r + 1:02d}"


def _write_partitions(frame, root: Path, region: str) -> None:
    for year, part in frame.groupby("year"):
        folder = root / f"year={year}" / f"region={region}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(part.drop(columns="year"), preserve_index=False)
        pq.write_table(table, folder / "part-0.parquet")


def write_regions(out: Path, regions: int, seed: int = 2019, scale: float = 1.0,
                  years: tuple[int, ...] = (2019, 2020, 2021), progress=None) -> Path:
    """Simulate `regions` cities (seeds seed, seed + 1, ...) into one partitioned data set.

    Each city is the L-city process with its own seed; markets add up across regions.
    """
    task = progress.add_task("Simulating regions", total=regions) if progress else None
    truths, scheme = {}, None
    inputs = {"regions": regions, "seed": seed, "scale": scale, "years": list(years)}
    with publish(Path(out), "data", inputs) as tmp:
        for r in range(regions):
            city = simulate_city(seed=seed + r, scale=scale, years=years)
            members = city.members.assign(member_id=city.members["member_id"] + r * ID_STRIDE)
            claims = city.claims.assign(member_id=city.claims["member_id"] + r * ID_STRIDE)
            _write_partitions(members, tmp / "members", region_name(r))
            _write_partitions(claims, tmp / "claims", region_name(r))
            truths[region_name(r)] = city.truth_dict()
            scheme = city.scheme if scheme is None else _add_markets(scheme, city.scheme)
            del city, members, claims
            if progress:
                progress.advance(task)
        (tmp / "scheme.toml").write_text(scheme_to_toml(scheme), encoding="utf-8")
        (tmp / "truth.json").write_text(json.dumps(truths, indent=2, default=float),
                                        encoding="utf-8")
    return Path(out)


def _add_markets(a: Scheme, b: Scheme) -> Scheme:
    markets = {y: replace(m, eligible_population=m.eligible_population
                          + b.markets[y].eligible_population) for y, m in a.markets.items()}
    return Scheme(a.plans, markets)
