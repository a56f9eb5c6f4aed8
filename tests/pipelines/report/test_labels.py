"""Every rule the optimiser can report has words in both languages (labels cannot drift
from the rule registry)."""

from __future__ import annotations

import pytest

from optimization.rules import RULES
from pipelines.conventions import LANGS
from pipelines.report.labels import UNITS, rule

ROWS = ["effective_ratio", "nominal_ratio_0", "deductible_income", "ratios_increasing_1",
        "no_worse_general_50000", "no_worse_special_cap", "no_worse_general_beyond",
        "profit_cap", "premium_budget_max",
        "premium_budget_min", "break_even", "cvar_budget", "risk_appetite", "keep_ratio_2",
        "ratio_max_0", "ratio_min_3", "cap"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_rule_and_row_has_words(lang):
    for name in [*RULES, *ROWS]:
        assert rule(name, lang, "CNY") != name, f"no {lang} words for {name}"
    for r in RULES.values():
        assert r.unit in UNITS, r.unit


def test_no_worse_names_the_member_group_and_cost():
    assert rule("no_worse_special_400000", "en", "CNY") == (
        "payout of special-group members at 400,000 CNY not below today's")
    # a portfolio counted in thousands has cost levels with decimals
    assert rule("no_worse_general_7.5", "en", "thousand CNY") == (
        "payout of ordinary members at 7.5 thousand CNY not below today's")


def test_a_row_name_ciplan_does_not_write_is_shown_as_it_is():
    """A plan file from elsewhere may name any row: the report shows it, never fails."""
    assert rule("no_worse_general_lots", "en", "CNY") == "no_worse_general_lots"
