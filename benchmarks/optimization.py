"""Optimisation on the full default L-city forecast of 2022: each proposal without and with
1,000 scenarios, the frontier, the shadow prices, branch and bound on continuous ratios."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import row


def _timed(fn, repeat: int = 1):
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return out, (time.perf_counter() - t0) / repeat


def run() -> None:
    from forecasting.data.dataset import load_data
    from forecasting.models.claims import ClaimsModel
    from forecasting.simulate import lcity_plan
    from optimization.solve import frontier, optimize, scenario_set, shadow_prices
    from optimization.space import load_space
    from pipelines.workflows.builtin import builtin_data

    print("Optimisation (issue 12), full default L-city forecast of 2022")
    fc = ClaimsModel().fit(load_data(builtin_data()).cells).forecast(2022)
    space = load_space()
    sq = lcity_plan(60.0)
    sc, secs = _timed(lambda: scenario_set(fc, space, sq))
    row("scenarios (1,000)", f"{secs:.1f} s", f"{sc.cost.size / 1e6:.0f} M costs")
    a, secs = _timed(lambda: optimize(fc, space, sq, "min-loss"), 3)
    row(f"A min-loss, exhaustive ({a.plans_priced:,} plans)", f"{secs:.2f} s",
        "target <= 1 s")
    _, secs = _timed(lambda: optimize(fc, space, sq, "break-even"), 3)
    row("B break-even, today's benefits", f"{secs:.2f} s", "target <= 1 s")
    _, secs = _timed(lambda: optimize(fc, space, sq, "risk", scenarios=sc))
    row("C risk appetite, 1,000 scenarios", f"{secs:.2f} s", "target <= 5 s")
    risky = space.model_copy(update={"risk": space.risk.model_copy(
        update={"cvar_budget": 1.2 * a.kpis.cvar95_loss if np.isfinite(a.kpis.cvar95_loss)
                else 2e7})}).with_free_premium()
    _, secs = _timed(lambda: optimize(fc, risky, sq, "cvar", scenarios=sc))
    row("cvar objective over the whole space, 1,000 scenarios", f"{secs:.2f} s",
        "target <= 5 s")
    _, secs = _timed(lambda: frontier(fc, space, sq, np.linspace(0.55, 0.70, 25)))
    row("25-point loss-benefit frontier", f"{secs:.1f} s", "target <= 10 s")
    _, secs = _timed(lambda: shadow_prices(a, fc, space, sq))
    row("shadow prices of A (continuous optimum of its combo + LP)", f"{secs:.2f} s")
    cont = space.model_copy(update={"bands": space.bands.model_copy(update={"step": 0.0})})
    opt, secs = _timed(lambda: optimize(fc, cont, sq, "min-loss"))
    row(f"min-loss, continuous ratios, branch and bound ({opt.plans_priced} nodes)",
        f"{secs:.1f} s", f"{opt.status}, gap {opt.gap:,.0f} CNY")
