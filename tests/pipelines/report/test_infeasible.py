"""Why no plan meets a proposal, in Chinese from the optimiser's changes: every kind of
change with its figures and no English left; English keeps the optimiser's sentence."""

from __future__ import annotations

import re

import pytest

from pipelines.report.infeasible import change_text, infeasible_text
from pipelines.report.labels import t

CHANGES = [
    ({"rule": "effective_ratio", "now": 0.95, "to": 0.6123}, ["95.0%", "61.2%", "实际报销比例"]),
    ({"rule": "nominal_ratio", "now": 0.6, "to": 0.5}, ["60.0%", "50.0%", "名义报销比例"]),
    ({"rule": "deductible_income", "now": 0.5, "to": 0.62}, ["50.0%", "62.0%", "起付线"]),
    ({"rule": "profit_cap", "now": 0.05, "to": 0.071}, ["5.0%", "7.1%", "结余"]),
    ({"rule": "premium", "now": 60.0, "to": 72.5}, ["60元", "72.5元", "人均筹资标准"]),
    ({"rule": "premium", "now": 60.0, "to": 87.0, "budget": "max"},
     ["60元", "87元", "上限同时提高"]),
    ({"rule": "premium", "now": 60.0, "to": 50.0, "budget": "min"},
     ["60元", "50元", "下限同时降低"]),
    ({"rule": "premium_max", "now": 45.0, "to": 70.26}, ["45元", "70.26元", "上限"]),
    ({"rule": "premium_min", "now": 50.0, "to": 40.0}, ["50元", "40元", "下限"]),
    ({"rule": "cap", "off": True}, ["取消约束", "封顶线"]),
    ({"pair": [{"rule": "premium_max", "now": 45.0, "to": 80.0}, "profit_cap"]},
     ["80元", "同时放宽", "结余不超过利润上限"]),
]


@pytest.mark.parametrize(("change", "words"), CHANGES)
def test_each_change_reads_in_chinese_with_its_figures(change, words):
    text = change_text(change, "zh", "CNY")
    assert all(w in text for w in words), text
    assert not re.search(r"[A-Za-z]{3,}", text), text


def test_the_reason_in_each_language():
    doc = {"infeasible": "no plan meets every constraint; any one of these changes would "
                         "allow one: effective_ratio: lower the floor from 95.0% to 61.2%",
           "infeasible_changes": {"kind": "any", "changes": [CHANGES[0][0], CHANGES[5][0]]}}
    zh = infeasible_text(doc, "zh", "CNY")
    assert zh.startswith("没有满足全部约束的方案；以下任一调整即可") and "；" in zh
    assert not re.search(r"[A-Za-z]{3,}", zh)
    assert doc["infeasible"] in infeasible_text(doc, "en", "CNY")
    old = {"infeasible": doc["infeasible"]}  # a folder from before the changes were kept
    assert doc["infeasible"] in infeasible_text(old, "zh", "CNY")
    with pytest.raises(ValueError, match="unknown rule"):
        change_text({"rule": "moon", "now": 1, "to": 2}, "zh", "CNY")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_unproved_search_is_said_as_such(lang):
    doc = {"infeasible": "no plan found, and not proved that none exists: …",
           "infeasible_changes": {"kind": "unproved", "changes": []}}
    said = infeasible_text(doc, lang, "CNY")
    assert said == t("infeasible_unproved", lang)
    assert "No plan meets every rule" not in said and "没有满足全部约束" not in said
