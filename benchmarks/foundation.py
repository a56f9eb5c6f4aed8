"""Foundation: simulate the full default L city; read+validate+aggregate vs one DuckDB query."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import in_child, row

CELLS_SQL = """
WITH annual AS (
  SELECT member_id, year, sum(eligible_cost) AS cost FROM read_parquet('{claims}') GROUP BY ALL
)
SELECT m.year, least(m.age // 5, 17) * 5 AS age_band, m.sex, m.residence, m.special_group,
       sum(m.exposure) AS exposure, count(*) AS insured,
       count(*) FILTER (WHERE a.cost > 0) AS claimants, coalesce(sum(a.cost), 0) AS cost
FROM read_parquet('{members}') m LEFT JOIN annual a USING (member_id, year)
GROUP BY ALL
"""

SIMULATE = """
import json, time
from forecasting.simulate import simulate_city
from pipelines.workflows.builtin import write_city
t = time.perf_counter()
write_city(simulate_city(), {out!r})
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""

# ciplan and the bare query run alternately in one process, so both see the same machine.
LOAD = """
import json, time
import duckdb
from forecasting.data.dataset import load_data
from forecasting.data.options import DataOptions
con = duckdb.connect()
times, sql_times = [], []
for _ in range(5):
    t = time.perf_counter()
    ds = load_data({data!r}, DataOptions(engine={engine!r}))
    times.append(time.perf_counter() - t)
    t = time.perf_counter()
    con.execute({sql!r}).df()
    sql_times.append(time.perf_counter() - t)
print(json.dumps({{"first": times[0], "best": min(times), "sql": min(sql_times),
                  "insured": int(ds.cells.table["insured"].sum())}}))
"""


def run() -> None:
    print("Foundation (issue 2)")
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "lcity")
        sim = in_child(SIMULATE.format(out=data))
        row("simulate full L city 2019-2021 (+ write Parquet)", f"{sim['seconds']:.1f} s",
            "target <= 60 s")
        sql = CELLS_SQL.format(members=f"{data}/members.parquet", claims=f"{data}/claims.parquet")
        cells = duckdb.connect().execute(sql).df()
        for engine in ("duckdb", "pandas"):
            load = in_child(LOAD.format(data=data, engine=engine, sql=sql))
            row(f"one DuckDB query, same {len(cells)} cells (best of 5)", f"{load['sql']:.2f} s")
            row(f"ciplan read+validate+aggregate, {engine} engine (best of 5)",
                f"{load['best']:.2f} s", f"first run {load['first']:.2f} s")
            row(f"  ratio to the DuckDB query ({load['insured']:,} member-years)",
                f"{load['best'] / load['sql']:.2f}x",
                f"{'target <= 2x; ' if engine == 'duckdb' else ''}"
                f"peak {load['peak_mb']:.0f} MB (target <= 4096)")
