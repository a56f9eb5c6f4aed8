"""Payout of the plan: hand-worked examples and properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecasting.scheme.plan import Plan, member_deductibles, member_payouts
from forecasting.simulate import lcity_plan

PLAN = lcity_plan(60.0)


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        (0.0, 0.0),
        (15_000.0, 0.0),
        (20_000.0, 0.60 * 5_000),
        (60_000.0, 0.60 * 35_000 + 0.65 * 10_000),
        (150_000.0, 0.60 * 35_000 + 0.65 * 50_000 + 0.70 * 50_000),
        (250_000.0, 0.60 * 35_000 + 0.65 * 50_000 + 0.70 * 100_000 + 0.75 * 50_000),
        (1_000_000.0, 300_000.0),
    ],
)
def test_payout_hand_worked(cost, expected):
    assert PLAN.payout(np.array([cost]))[0] == pytest.approx(expected)


def test_special_group_terms_by_hand():
    # deductible 7,500; 65 % to 50 k, 70 % to 100 k, 75 % to 200 k, 80 % above; no cap
    cost = np.array([7_000.0, 20_000.0, 1_000_000.0])
    special = np.array([True, True, True])
    expected = [0.0, 0.65 * 12_500,
                0.65 * 42_500 + 0.70 * 50_000 + 0.75 * 100_000 + 0.80 * 800_000]
    np.testing.assert_allclose(member_payouts(PLAN, cost, special), expected)
    np.testing.assert_allclose(member_deductibles(PLAN, [True, False]), [7_500.0, 15_000.0])


def test_capped_cost_reaches_cap_exactly():
    x_cap = PLAN.capped_cost()
    # 0.6*35k + 0.65*50k + 0.7*100k = 123.5 k at 200 k; the rest at 75 %
    assert x_cap == pytest.approx(200_000 + (300_000 - 123_500) / 0.75)
    assert PLAN.payout(np.array([x_cap]))[0] == pytest.approx(300_000)
    assert PLAN.payout(np.array([x_cap - 100]))[0] < 300_000


costs = st.floats(0, 3_000_000)


def _plan_strategy():
    @st.composite
    def build(draw):
        d = draw(st.floats(0, 50_000))
        widths = draw(st.lists(st.floats(1_000, 200_000), min_size=0, max_size=4))
        ratios = sorted(draw(st.lists(st.floats(0, 1), min_size=len(widths) + 1,
                                      max_size=len(widths) + 1)))
        cap = draw(st.one_of(st.none(), st.floats(10_000, 1_000_000)))
        return Plan(60.0, d, tuple(d + np.cumsum(widths)), tuple(ratios), cap)
    return build()


@given(plan=_plan_strategy(), x=costs, h=st.floats(0, 100_000))
def test_payout_properties(plan, x, h):
    g, g_h = plan.payout(np.array([x, x + h]))
    assert g >= 0
    if x <= plan.deductible:
        assert g == 0
    if plan.cap is not None:
        assert g <= plan.cap + 1e-6
    assert g_h >= g - 1e-9                                  # non-decreasing
    assert g_h - g <= max(plan.ratios) * h + 1e-6           # continuous (Lipschitz)


@given(plan=_plan_strategy(), x=costs)
def test_layers_add_up(plan, x):
    """The payout equals the sum over bands of ratio x the cost inside the band, capped."""
    edges = [plan.deductible, *plan.band_edges, np.inf]
    layered = sum(r * max(0.0, min(x, hi) - lo)
                  for r, lo, hi in zip(plan.ratios, edges[:-1], edges[1:], strict=True))
    expected = layered if plan.cap is None else min(layered, plan.cap)
    assert plan.payout(np.array([x]))[0] == pytest.approx(expected, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"deductible": -1.0}, "deductible must be >= 0"),
        ({"ratios": (0.6, 0.65)}, "one more ratio than band edges"),
        ({"band_edges": (10_000.0, 100_000.0, 200_000.0)}, "band edges must rise"),
        ({"ratios": (0.6, 0.65, 1.2, 0.75)}, r"ratios must be in \[0, 1\]"),
        ({"cap": 0.0}, "cap must be > 0"),
    ],
)
def test_incoherent_plan_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        PLAN.with_(**changes)
