"""Forecasting: `ciplan train` on the full default L city; Forecast.scenarios(1000) deep
enough for the plan in force (floor = its lowest deductible)."""

from __future__ import annotations

import tempfile

from benchmarks.common import ciplan, in_child, row, store_env

SCENARIOS = """
import json, time
from forecasting.data.dataset import load_data
from forecasting.models.claims import ClaimsModel
from pipelines.workflows.builtin import builtin_data
ds = load_data(builtin_data())
fc = ClaimsModel().fit(ds.cells).forecast(2022)
plan = ds.scheme.plan(2021)
floor = min(plan.deductible, plan.for_special_group().deductible)
times = []
for seed in range(3):
    t = time.perf_counter()
    fc.scenarios(1000, seed=seed, floor=floor)
    times.append(time.perf_counter() - t)
print(json.dumps({"best": min(times), "first": times[0]}))
"""


def run() -> None:
    print("Forecasting (issue 3)")
    with tempfile.TemporaryDirectory() as tmp:
        wall, peak = ciplan(["train"], store_env(tmp))
        row("ciplan train, full default L city (7 candidates, backtest, MLflow)",
            f"{wall:.1f} s", f"target <= 60 s; peak {peak:.0f} MB (target <= 4096)")
    sc = in_child(SCENARIOS)
    row("Forecast.scenarios(1000), full default L city", f"{sc['best']:.2f} s",
        f"first {sc['first']:.2f} s; target <= 5 s")
