"""The second simulated portfolio (forecasting/simulate_health.py): each candidate's robust
backtest score, as `ciplan train` chooses champions on them (`python -m benchmarks.portfolio`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import row
from forecasting.config import load_project
from forecasting.data.dataset import load_data, write_data_dir
from forecasting.data.options import DataOptions
from forecasting.models.backtesting import backtest, summarise
from forecasting.simulate_health import simulate_health
from pipelines.workflows.train import SELECT_BY, candidates


def run() -> None:
    print("Second portfolio (issue 13): robust backtest score of each candidate")
    health = simulate_health(seed=7, members=20_000)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data_dir(Path(tmp) / "health", health.members, health.claims, None,
                              fmt="csv")
        (data / "ciplan.toml").write_text('[cohorts]\nkeys = ["sex", "district"]\n')
        config = load_project(None, data)
        ds = load_data(data, DataOptions(spec=config.cohorts.spec()), config)
    for cand in candidates(ds):
        metric = SELECT_BY[cand.kind]
        table = backtest(ds.cells, ds.scheme, lambda c=cand: c.model)
        score, left_out = summarise(table, metric)
        by_year = ", ".join(f"{v:.4f}" for v in table[metric])
        row(f"{cand.kind} {cand.name}: median {metric}", f"{score:.4f}",
            f"by year {by_year}" + (f"; left out {left_out}" if left_out else ""))


if __name__ == "__main__":
    run()
