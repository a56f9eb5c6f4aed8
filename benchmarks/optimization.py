"""Optimisation: min-loss MILP, CVaR with 1,000 scenarios, a 25-point frontier; HiGHS vs CBC."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import row


def run() -> None:
    from forecasting.data.dataset import load_data
    from forecasting.models.claims import ClaimsModel
    from forecasting.simulate import lcity_plan
    from optimization.solve import frontier, optimize, scenario_set
    from optimization.space import load_space
    from pipelines.workflows.builtin import builtin_data

    print("Optimisation (issue 4), full default L-city forecast of 2022")
    fc = ClaimsModel().fit(load_data(builtin_data()).cells).forecast(2022)
    space = load_space()
    sq = lcity_plan(60.0)
    # CVaR at a premium above break-even (72 CNY), budget 1.2 x today's plan's CVaR there
    from optimization.evaluate import evaluate_plan
    t0 = time.perf_counter()
    sc = scenario_set(fc, space, sq)
    row("scenarios for CVaR (1,000, costs above 5,000 CNY)", f"{time.perf_counter() - t0:.1f} s",
        f"{sc.cost.size / 1e6:.0f} M costs")
    for solver in ("highs", "cbc"):
        t0 = time.perf_counter()
        for _ in range(3):
            optimize(fc, space, sq, "min-loss", solver)
        row(f"min-loss MILP, all constraints, {solver}", f"{(time.perf_counter() - t0) / 3:.2f} s",
            "target <= 1 s")
        today = evaluate_plan(sq.with_(premium_per_capita=72.0), fc, space.costs, sc)
        risky = space.model_copy(update={
            "premium": space.premium.model_copy(update={"fixed": 72.0}),
            "risk": space.risk.model_copy(update={"cvar_budget": 1.2 * today.cvar95_loss})})
        t0 = time.perf_counter()
        opt = optimize(fc, risky, sq, "cvar", solver, scenarios=sc)
        row(f"CVaR95 MILP, 1,000 scenarios, {solver}", f"{time.perf_counter() - t0:.1f} s",
            f"target <= 5 s; {opt.relinearisations} linearisations")
    t0 = time.perf_counter()
    frontier(fc, space, sq, np.linspace(0.55, 0.70, 25))
    row("25-point loss-benefit frontier (highs)", f"{time.perf_counter() - t0:.1f} s",
        "target <= 20 s")
