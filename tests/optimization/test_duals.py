"""Shadow prices predict what they say: each binding right-hand side (and the cap) is
moved a little and the continuous problem of the proposal's (deductible, cap) is solved
again by a second method (scipy's SLSQP on the evaluator's exact payout); the change of
the optimum equals dual x move within 1 %."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.scheme.plan import Plan
from optimization.solve import optimize, shadow_prices


def _problem(fc, space, today: Plan, plan: Plan):
    """Objective and named constraints (>= 0) of the continuous problem at plan's combo,
    as functions of the ratios and of the cap; a move of a constraint is added to its
    right-hand side in its natural unit."""
    premium = plan.premium_per_capita
    income = premium * fc.insured
    opex = space.costs.opex_fixed + space.costs.opex_share * income
    b, c = space.bands, space.constraints
    today_sp = today.for_special_group()

    def make(r, cap):
        return plan.with_(ratios=tuple(np.clip(r, 0, 1)), cap=cap)

    def loss(r, cap):
        return fc.expected_payout(make(r, cap)) + opex - income

    def cons(r, cap, moves):
        p = make(r, cap)
        out = {}
        for k in range(len(r)):
            out[f"ratio_max_{k}"] = b.ratio_max - r[k] - moves.get(f"ratio_max_{k}", 0) * 0.01
            out[f"ratio_min_{k}"] = r[k] - b.ratio_min - moves.get(f"ratio_min_{k}", 0) * 0.01
        for k in range(len(r) - 1):
            out[f"ratios_increasing_{k}"] = r[k + 1] - r[k] + moves.get(
                f"ratios_increasing_{k}", 0) * 0.01
        floor = c.effective_ratio_floor + moves.get("effective_ratio", 0) * 0.01
        out["effective_ratio"] = (fc.expected_payout(p)
                                  / fc.expected_above_deductible(p) - floor)
        for who, mine, old in (("general", p, today), ("special", p.for_special_group(),
                                                       today_sp)):
            points = {old.deductible, *old.band_edges, old.capped_cost(), mine.deductible,
                      *mine.band_edges}
            for y in sorted(x for x in points if np.isfinite(x)):
                target = float(old.payout(np.array([y]))[0])
                if target > 0:  # min(cap, g(y)) >= target: cap >= target and g(y) >= it
                    assert (mine.cap or np.inf) >= target - 1e-6
                    name = f"no_worse_{who}_{y:.0f}"
                    out[name] = (float(mine.uncapped(np.array([y]))[0]) - target
                                 - moves.get(name, 0))
            # beyond every breakpoint an uncapped proposal pays its last ratio on each CNY,
            # today its own (0 once capped): the first must not be below the second
            slope = 0.0 if np.isfinite(old.capped_cost()) else old.ratios[-1]
            if mine.cap is None and slope > 0:
                name = f"no_worse_{who}_beyond"
                out[name] = mine.ratios[-1] - slope - moves.get(name, 0) * 0.01
        return out

    return loss, cons


def _vertex_move(cons, r0, cap, active: list[str], moved: str, step: float) -> np.ndarray:
    """The optimum after moving one right-hand side, when the optimum is a vertex: the
    active rules (linear in the ratios below the cap) solved with the moved one shifted.
    Rows parallel to the moved one (the same rule for another member group) fall slack."""
    f0 = cons(r0, cap, {})
    h = 1e-6
    grad = {n: np.array([(cons(r0 + h * e, cap, {})[n] - f0[n]) / h
                         for e in np.eye(len(r0))]) for n in active}
    rows, rhs = [grad[moved]], [cons(r0, cap, {})[moved] - cons(r0, cap, {moved: step})[moved]]
    for n in active:
        trial = np.vstack([*rows, grad[n]])
        if n != moved and np.linalg.matrix_rank(trial, tol=1e-6) == len(trial):
            rows.append(grad[n])
            rhs.append(0.0)
    assert len(rows) == len(r0), "the optimum is not a vertex of its active rules"
    return r0 + np.linalg.solve(np.vstack(rows), np.array(rhs))


@pytest.mark.parametrize("cap", [300_000.0, 280_000.0, 400_000.0])
def test_duals_predict_moves_of_their_right_hand_sides(small_forecast, space, status_quo,
                                                       cap):
    sp = space.model_copy(update={"cap": space.cap.model_copy(update={"candidates": (cap,)}),
                                  "deductible": space.deductible.model_copy(
                                      update={"candidates": (15_000.0,)})})
    opt = optimize(small_forecast, sp, status_quo, "min-loss")
    table = shadow_prices(opt, small_forecast, sp, status_quo)
    r0 = np.array([float(x) for x in table["ratios_at"].iloc[0].split(" / ")])
    loss, cons = _problem(small_forecast, sp, status_quo, opt.plan)
    base = loss(r0, opt.plan.cap)
    at_r0 = cons(r0, opt.plan.cap, {})
    active = sorted((n for n, v in at_r0.items() if abs(v) < 1e-6),
                    key=lambda n: -abs(table.set_index("constraint")["per_unit"].get(n, 0)))
    binding = table[table["binding"] & (table["constraint"] != "cap")]
    checked = []
    for _, row in binding.iterrows():
        name = row["constraint"]
        step = 10.0 if name.startswith("no_worse") and not name.endswith("_beyond") else 0.01
        moved = loss(_vertex_move(cons, r0, opt.plan.cap, active, name, step), opt.plan.cap)
        assert (moved - base) / step == pytest.approx(row["per_unit"], rel=0.01), name
        checked.append(name)
    assert any(n.startswith("no_worse") for n in checked)
    # the cap: a term, not a rule; its price is the expected number of members at the cap
    cap_row = table[table["constraint"] == "cap"].iloc[0]
    if opt.plan.cap is not None:
        step = 100.0
        moved = loss(r0, opt.plan.cap + step)
        assert (moved - base) / step == pytest.approx(cap_row["per_unit"], rel=0.01)


@pytest.mark.parametrize("edges", [(40_000.0, 90_000.0, 250_000.0), (60_000.0, 150_000.0)])
@pytest.mark.parametrize("increment", [0.05, 0.10])
def test_duals_of_todays_benefits_price_todays_schedule(small_forecast, space, status_quo,
                                                        edges, increment):
    """Proposals B and C keep today's benefits: their shadow prices are those of today's
    schedule (its band edges, its special-group rules), not of today's ratios under the
    space's edges (0.738 instead of 0.817 per point of the first ratio, 36 % off the last,
    and an IndexError under a space of three bands). Checked against the break-even
    premium of the exact evaluator, each ratio moved."""
    sp = space.model_copy(update={
        "bands": space.bands.model_copy(update={"edges": edges}),
        "special": space.special.model_copy(update={"ratio_increment": increment})})
    opt = optimize(small_forecast, sp, status_quo, "break-even")
    assert opt.plan.band_edges == status_quo.band_edges
    table = shadow_prices(opt, small_forecast, sp, status_quo).set_index("constraint")
    per_premium = (1 - sp.costs.opex_share) * small_forecast.insured
    base = small_forecast.expected_payout(opt.plan)
    h = 1e-4
    for k in range(len(status_quo.ratios)):
        r = list(opt.plan.ratios)
        r[k] += h
        moved = small_forecast.expected_payout(opt.plan.with_(ratios=tuple(r)))
        point = (moved - base) / h * 0.01 / per_premium  # premium per point of ratio k
        assert table.loc[f"keep_ratio_{k}", "per_unit"] == pytest.approx(point, rel=1e-3)
    step = 100.0  # the cap: members at today's cap, per unit of premium per capita
    capped = small_forecast.expected_payout(opt.plan.with_(cap=opt.plan.cap + step))
    assert table.loc["cap", "per_unit"] == pytest.approx(
        (capped - base) / step / per_premium, rel=1e-2)
    sp = sp.model_copy(update={"premium": sp.premium.model_copy(update={"max": 150.0})})
    risk = optimize(small_forecast, sp, status_quo, "risk")  # C: on today's schedule too
    table = shadow_prices(risk, small_forecast, sp, status_quo)
    assert table["ratios_at"].iloc[0] == " / ".join(f"{x:.4f}" for x in status_quo.ratios)
