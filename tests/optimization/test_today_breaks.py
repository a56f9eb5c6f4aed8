"""A rule today's plan itself breaks (here the effective-ratio floor) is named beside the
plan proposed, with today's figure and the rule's: the plan meets it (min-loss chooses the
benefits) or keeps today's benefits and breaks it too (break-even)."""

from __future__ import annotations

import pytest

from optimization.evaluate import evaluate_plan
from optimization.solve import optimize
from pipelines.report.infeasible import today_break_text


def test_a_floor_todays_plan_is_below_is_named(small_forecast, small_space, status_quo):
    today = evaluate_plan(status_quo, small_forecast, small_space.costs).effective_ratio
    floor = round(today + 0.02, 3)
    above = small_space.model_copy(update={"constraints": small_space.constraints.model_copy(
        update={"effective_ratio_floor": floor})})
    opt = optimize(small_forecast, above, status_quo, "min-loss")
    assert opt.kpis.effective_ratio >= floor - 1e-9
    (found,) = opt.today_breaks
    assert found["rule"] == "effective_ratio" and not found["kept"]
    assert found["value"] == pytest.approx(today, rel=1e-9) and found["limit"] == floor
    text = today_break_text(found, "en", "HKD", "A")
    assert text.startswith(f"today's plan itself breaks the effective-ratio floor: its "
                           f"effective ratio is {today:.1%}, below the floor of {floor:.1%}; "
                           "proposal A meets it")
    kept = optimize(small_forecast, above, status_quo, "break-even").today_breaks
    assert [b["rule"] for b in kept] == ["effective_ratio"] and kept[0]["kept"]
    assert "方案B保持现行待遇，因此同样不满足该规定" in today_break_text(kept[0], "zh", "CNY", "B")
    # today's plan meeting every rule: nothing said
    assert optimize(small_forecast, small_space, status_quo, "min-loss").today_breaks == ()


def test_a_deductible_above_the_income_rule_is_named_in_the_plans_money(
        small_forecast, small_space, status_quo):
    costs = small_space.costs.model_copy(update={"disposable_income": 28_000.0})
    poorer = small_space.model_copy(update={"costs": costs})
    found = optimize(small_forecast, poorer, status_quo, "min-loss").today_breaks
    (rule,) = [b for b in found if b["rule"] == "deductible_income"]
    assert rule["value"] == status_quo.deductible and rule["limit"] == pytest.approx(14_000.0)
    assert "its deductible of HKD 15,000 is above the HKD 14,000" in today_break_text(
        rule, "en", "HKD", "A")
    assert "起付线15,000元高于人均可支配收入规定比例允许的14,000元" in today_break_text(
        rule, "zh", "CNY", "A")
