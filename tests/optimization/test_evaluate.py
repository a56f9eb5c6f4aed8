"""Scenario payouts priced from the scenarios' sorted sums equal paying every cost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from optimization.evaluate import scenario_payouts


@pytest.mark.parametrize("change", [
    {},
    {"deductible": 12_000.0},
    {"cap": 150_000.0},
    {"premium_per_capita": 90.0},
])
def test_payouts_from_the_sums_equal_paying_every_cost(small_forecast, status_quo, change):
    plan = replace(status_quo, **change)
    floor = min(plan.deductible, plan.for_special_group().deductible)
    sc = small_forecast.scenarios(300, seed=5, floor=floor)
    paid = sc.payouts(plan)  # member_payouts on every simulated cost
    assert paid.sum() > 0
    np.testing.assert_allclose(scenario_payouts(plan, sc), paid, rtol=1e-9, atol=1e-6)


def test_a_deductible_below_the_floor_is_refused(small_forecast, status_quo):
    sc = small_forecast.scenarios(50, seed=1, floor=status_quo.deductible * 2)
    with pytest.raises(ValueError, match="scenarios hold costs above"):
        scenario_payouts(status_quo, sc)


def test_a_floor_per_cohort_prices_each_group_above_its_own(small_forecast, status_quo):
    """Special groups drawn above their own (lower) deductible, ordinary members above
    theirs: the sums price the plan as paying every cost does, and refuse an ordinary
    deductible below the ordinary members' floor even when it is above the special one."""
    special = small_forecast._special()
    assert special.any() and not special.all()
    floors = small_forecast.deductibles(status_quo)
    assert (floors[special] == status_quo.for_special_group().deductible).all()
    assert (floors[~special] == status_quo.deductible).all()
    sc = small_forecast.scenarios(300, seed=6, floor=floors)
    assert sc.covers(status_quo)
    np.testing.assert_allclose(scenario_payouts(status_quo, sc), sc.payouts(status_quo),
                               rtol=1e-9, atol=1e-6)
    lower = replace(status_quo, deductible=status_quo.deductible * 0.8)
    assert lower.deductible > floors.min() and not sc.covers(lower)
    with pytest.raises(ValueError, match="scenarios hold costs above"):
        scenario_payouts(lower, sc)
    # the message names the group whose deductible falls below its floor
    with pytest.raises(ValueError, match=f"the ordinary members' costs above "
                       f"{floors[~special].max():g} only; the plan's ordinary members' "
                       f"deductible is {lower.deductible:g}"):
        sc.payouts(lower)
