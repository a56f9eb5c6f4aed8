"""`make bench-large`: aggregation at provincial scale. Generates (once) 50 simulated cities
x 1 year (~105 M member-years) as partitioned Parquet, then measures in child processes:
a bare DuckDB scan of the same columns, ciplan's DuckDB aggregation (checks included) with
its peak memory, and Spark local[2] against DuckDB on 5 cities (~10 M member-years)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks.common import in_child, row

ROOT = Path(os.environ.get("CIPLAN_LARGE_DIR", ".cache/large"))

GENERATE = """
import json, time
from pipelines.workflows.regions import write_regions
t = time.perf_counter()
write_regions({out!r}, {regions}, seed=100, scale=1.0, years=(2019,))
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""

# the bare scan reads every column the aggregation reads, with the cheapest aggregate each
SCAN = """
import json, time, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
m = con.execute("SELECT COUNT(*), SUM(member_id), SUM(year), SUM(age), MAX(sex), "
                "MAX(residence), SUM(CAST(special_group AS INT)), SUM(exposure), MAX(region) "
                "FROM read_parquet('{d}/members/**/*.parquet', hive_partitioning = true)"
                ).fetchone()
c = con.execute("SELECT COUNT(*), SUM(member_id), SUM(year), SUM(eligible_cost) FROM "
                "read_parquet('{d}/claims/**/*.parquet', hive_partitioning = true)").fetchone()
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": m[0], "claims": c[0]}}))
"""

AGGREGATE = """
import json, time
from pathlib import Path
from forecasting.data.cohorts import CohortSpec
from forecasting.data.engines import get_engine
from forecasting.data.options import DataOptions, Source
spec = CohortSpec(keys=("sex", "residence", "special_group", "region"))
d = Path({d!r})
source = Source(d / "members", d / "claims", d / "scheme.toml", spec, (2019,))
t = time.perf_counter()
cells = get_engine({engine!r}).cells(source, DataOptions(spec=spec{extra}))
print(json.dumps({{"seconds": time.perf_counter() - t, "cells": len(cells.table),
                  "insured": int(cells.table["insured"].sum())}}))
"""


def _data(regions: int) -> Path:
    out = ROOT / f"regions-{regions}"
    if not (out / "scheme.toml").exists():
        gen = in_child(GENERATE.format(out=str(out), regions=regions))
        row(f"generate {regions} cities x 1 year (partitioned Parquet)",
            f"{gen['seconds']:.0f} s")
    return out


def _aggregate(d: Path, engine: str, summary: bool = False) -> dict:
    extra = ", memory_limit='4GB'" if engine == "duckdb" else ", spark_master='local[2]'"
    extra += ", severity_summary=True" if summary else ""
    return in_child(AGGREGATE.format(engine=engine, d=str(d), extra=extra))


def run() -> None:
    print("Scale (issue 6)")
    big = _data(50)
    scan = in_child(SCAN.format(d=str(big)))
    agg = _aggregate(big, "duckdb")
    n = agg["insured"]
    row(f"DuckDB bare scan of the columns it reads, {n / 1e6:.0f} M member-years",
        f"{scan['seconds']:.1f} s")
    row("ciplan cells, DuckDB engine (checks, claimant rows, 4 GB memory limit)",
        f"{agg['seconds']:.1f} s", f"{n / agg['seconds'] / 1e6:.1f} M rows/s; "
        f"peak {agg['peak_mb'] / 1024:.1f} GB (target <= 6)")
    row("  ratio to the bare scan", f"{agg['seconds'] / scan['seconds']:.2f}x",
        "target <= 2x")
    row("  estimated for 1 billion member-years (linear)",
        f"{agg['seconds'] * 1e9 / n / 60:.1f} min")
    summ = _aggregate(big, "duckdb", summary=True)
    row("  the same with the severity summary instead of claimant rows",
        f"{summ['seconds']:.1f} s", f"{summ['seconds'] / scan['seconds']:.2f}x the scan; "
        f"peak {summ['peak_mb'] / 1024:.1f} GB")
    small = _data(5)
    duck = _aggregate(small, "duckdb")
    spark = _aggregate(small, "spark")
    row(f"Spark local[2], {spark['insured'] / 1e6:.0f} M member-years",
        f"{spark['seconds']:.1f} s", f"DuckDB {duck['seconds']:.1f} s; "
        f"ratio {spark['seconds'] / duck['seconds']:.1f}x")


if __name__ == "__main__":
    sys.exit(run())
