"""Every label and sentence of the negotiation report, in English and Chinese."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "title": {"en": "Critical illness insurance: plan proposals for {year}",
              "zh": "城乡居民大病保险 {year} 年方案建议"},
    "summary": {"en": "Summary", "zh": "摘要"},
    "history": {"en": "History and forecast", "zh": "历史经营与预测"},
    "kpis": {"en": "Key figures: today's plan and the proposals",
             "zh": "关键指标：现行方案与建议方案"},
    "terms": {"en": "Plan terms side by side", "zh": "方案条款对比"},
    "member": {"en": "What a member gets (annual payout at an annual eligible cost)",
               "zh": "参保人获得的赔付（按年度合规费用）"},
    "by_age": {"en": "Expected payouts by age band", "zh": "分年龄段预期赔付"},
    "shadow": {"en": "What each rule costs (shadow prices)", "zh": "约束条件的代价（影子价格）"},
    "frontier": {"en": "Loss against benefit: the frontier", "zh": "亏损与待遇的权衡（有效前沿）"},
    "forecast": {"en": "Forecast by age: frequency and severity",
                 "zh": "分年龄预测：发生率与次均费用"},
    "backtest": {"en": "Backtest accuracy of the models", "zh": "模型回测精度"},
    "provenance": {"en": "Assumptions and sources", "zh": "假设与数据来源"},
    "status_quo": {"en": "Today's plan", "zh": "现行方案"},
    "A": {"en": "A: least loss at today's premium", "zh": "方案A：现行筹资下亏损最小"},
    "B": {"en": "B: break-even premium, today's benefits", "zh": "方案B：保持待遇的保本筹资"},
    "impact": {"en": "Who gains and who loses against today (expected members a year)",
               "zh": "与现行方案相比的受益与受损人群（年度预期人数）"},
    "impact_by": {"en": "By", "zh": "分组"},
    "impact_key": {"en": "Group", "zh": "类别"},
    "impact_claimants": {"en": "Claimants", "zh": "患者人数"},
    "impact_gain": {"en": "Paid more", "zh": "多获赔付"},
    "impact_lose": {"en": "Paid less", "zh": "少获赔付"},
    "impact_change": {"en": "Change in payouts (CNY)", "zh": "赔付变化（元）"},
    "impact_per": {"en": "Change per claimant (CNY)", "zh": "人均变化（元）"},
    "cost_band": {"en": "annual cost (CNY)", "zh": "年度费用（元）"},
    "group": {"en": "member group", "zh": "人群"},
    "status": {"en": "How the optimum is known: {status} ({method}, {plans} plans priced "
                     "exactly).",
               "zh": "最优性：{status}（{method}，精确计算了 {plans} 个方案）。"},
    "C": {"en": "C: lowest premium meeting the insurer's risk appetite, today's benefits",
          "zh": "方案C：风险预算（CVaR95）内亏损最小"},
    "year": {"en": "Year", "zh": "年度"},
    "insured": {"en": "Insured", "zh": "参保人数"},
    "insured_rate": {"en": "Insured rate", "zh": "参保率"},
    "premium_income": {"en": "Premium income (CNY)", "zh": "保费收入（元）"},
    "payouts": {"en": "Payouts (CNY)", "zh": "赔付支出（元）"},
    "loss": {"en": "Loss (CNY)", "zh": "亏损（元）"},
    "loss_ratio": {"en": "Loss ratio", "zh": "赔付率"},
    "premium_per_capita": {"en": "Premium per capita (CNY)", "zh": "人均筹资（元）"},
    "expected_payout": {"en": "Expected payouts (CNY)", "zh": "预期赔付（元）"},
    "operating_cost": {"en": "Operating cost (CNY)", "zh": "经营费用（元）"},
    "expected_loss": {"en": "Expected loss (CNY)", "zh": "预期亏损（元）"},
    "loss_range": {"en": "Loss, 5-95 % range (CNY)", "zh": "亏损 5%-95% 区间（元）"},
    "effective_ratio": {"en": "Effective reimbursement ratio", "zh": "实际报销比例"},
    "prob_loss": {"en": "Probability of a loss", "zh": "亏损概率"},
    "cvar95_loss": {"en": "CVaR95 of the loss (CNY)", "zh": "亏损的 CVaR95（元）"},
    "deductible": {"en": "Deductible (CNY)", "zh": "起付线（元）"},
    "bands": {"en": "Bands and ratios", "zh": "分段报销比例"},
    "cap": {"en": "Annual cap (CNY)", "zh": "年度封顶线（元）"},
    "special": {"en": "Special groups", "zh": "特殊群体"},
    "special_terms": {"en": "deductible x{f:g}, ratios +{inc:.0f} points, cap {cap}",
                      "zh": "起付线乘以{f:g}，比例提高{inc:.0f}个百分点，封顶线{cap}"},
    "none": {"en": "none", "zh": "不设"},
    "cost_level": {"en": "Annual eligible cost (CNY)", "zh": "年度合规费用（元）"},
    "age_band": {"en": "Age band", "zh": "年龄段"},
    "constraint": {"en": "Rule", "zh": "约束"},
    "price": {"en": "Cost to the insurer", "zh": "对保险机构的代价"},
    "metric": {"en": "Measure", "zh": "指标"},
    "value": {"en": "Value", "zh": "数值"},
    "infeasible": {"en": "No plan meets every rule: {why}", "zh": "没有满足全部约束的方案：{why}"},
    "frequency": {"en": "Claimants per member-year", "zh": "人均发生率"},
    "severity": {"en": "Mean annual cost per claimant (CNY)", "zh": "人均年度合规费用（元）"},
    "observed": {"en": "observed", "zh": "实际"},
    "forecast_word": {"en": "forecast", "zh": "预测"},
    "floor": {"en": "Effective-ratio floor", "zh": "实际报销比例下限"},
    "sum_today": {
        "en": "Under today's plan the insurer is expected to lose CNY {loss} in {year} "
              "(loss ratio {lr}, probability of a loss {pl}): premium income of CNY {inc} "
              "against expected payouts of CNY {pay} and operating cost of CNY {opex}.",
        "zh": "按现行方案，{year} 年保险机构预计亏损 {loss} 元（赔付率 {lr}，亏损概率 {pl}）："
              "保费收入 {inc} 元，预期赔付 {pay} 元，经营费用 {opex} 元。"},
    "sum_prop": {
        "en": "{name}: premium {p} CNY per capita, deductible {d} CNY, cap {cap}; expected "
              "loss CNY {loss} (change {delta}), effective ratio {er}.",
        "zh": "{name}：人均筹资 {p} 元，起付线 {d} 元，封顶线 {cap}；预期亏损 {loss} 元"
              "（变化 {delta}），实际报销比例 {er}。"},
    "shadow_sentence": {
        "en": "{rule}: raising it by one {unit} {direction} the {objective} by {value}.",
        "zh": "{rule}：每提高一个单位（{unit}），{objective}{direction} {value}。"},
    "raises": {"en": "raises", "zh": "增加"},
    "lowers": {"en": "lowers", "zh": "减少"},
    "no_binding": {"en": "No rule binds at this plan.", "zh": "该方案下无约束起作用。"},
    "prov_text": {
        "en": "Data fingerprint {fp}; forecast run {fr}; model versions {mv}; plan runs {pr}. "
              "Operating cost {os} of premium; profit cap {pc} of premium; figures are "
              "expected values over the forecast, ranges from {n} scenarios.",
        "zh": "数据指纹 {fp}；预测运行 {fr}；模型版本 {mv}；方案运行 {pr}。经营费用为保费的 {os}；"
              "利润上限为保费的 {pc}；数值为预测期望值，区间来自 {n} 个情景。"},
}

# Names of the optimiser's constraints and units, as people say them.
RULES: dict[str, dict[str, str]] = {
    "effective_ratio": {"en": "effective-ratio floor", "zh": "实际报销比例下限"},
    "no_worse": {"en": "payout of {who} members at {x} CNY not below today's",
                 "zh": "{who}年度费用{x}元时赔付不低于现行"},
    "no_worse_cap": {"en": "{who} members reach the cap no later than today's payout does",
                     "zh": "{who}达到封顶线时的赔付不低于现行"},
    "cap": {"en": "the annual payout cap", "zh": "封顶线"},
    "nominal_ratio": {"en": "nominal ratio floor of band {k}", "zh": "第{k}段名义报销比例下限"},
    "ratio_max": {"en": "highest ratio allowed in band {k}", "zh": "第{k}段报销比例上限"},
    "ratio_min": {"en": "lowest ratio allowed in band {k}", "zh": "第{k}段报销比例下限"},
    "risk_appetite": {"en": "the insurer's risk appetite (CVaR95 within a share of premium)",
                      "zh": "保险机构风险偏好（CVaR95 不超过保费的一定比例）"},
    "keep_ratio": {"en": "ratio of band {k} kept", "zh": "第{k}段报销比例保持不变"},
    "ratios_increasing": {"en": "ratios rise from band {k} to {k1}",
                          "zh": "第{k}段至第{k1}段比例不降"},
    "premium_budget": {"en": "premium within the bureau's budget", "zh": "筹资在预算范围内"},
    "premium_budget_max": {"en": "premium within the bureau's budget", "zh": "筹资不超过预算上限"},
    "premium_budget_min": {"en": "premium above the budget's floor", "zh": "筹资不低于预算下限"},
    "profit_cap": {"en": "surplus within the profit cap", "zh": "结余不超过利润上限"},
    "break_even": {"en": "break even", "zh": "保本"},
    "cvar_budget": {"en": "risk budget (CVaR95)", "zh": "风险预算（CVaR95）"},
    "deductible_income": {"en": "deductible within 50 % of income", "zh": "起付线不超过收入的50%"},
}
UNITS: dict[str, dict[str, str]] = {
    "point of effective ratio": {"en": "point of effective ratio", "zh": "实际报销比例一个百分点"},
    "CNY paid at that cost": {"en": "CNY paid at that cost", "zh": "该费用水平下赔付1元"},
    "CNY of surplus": {"en": "CNY of surplus", "zh": "结余1元"},
    "CNY of loss": {"en": "CNY of loss", "zh": "亏损1元"},
    "CNY of CVaR": {"en": "CNY of CVaR", "zh": "CVaR 1元"},
    "CNY of premium per capita": {"en": "CNY of premium per capita", "zh": "人均筹资1元"},
    "CNY of deductible": {"en": "CNY of deductible", "zh": "起付线1元"},
    "point of ratio": {"en": "point of ratio", "zh": "报销比例一个百分点"},
    "CNY of cap": {"en": "CNY of cap", "zh": "封顶线1元"},
    "CNY paid at a cost level": {"en": "CNY paid at a cost level", "zh": "某费用水平下赔付1元"},
    "point of nominal ratio": {"en": "point of nominal ratio", "zh": "名义报销比例一个百分点"},
}


WHO = {"general": {"en": "ordinary", "zh": "普通参保人"},
       "special": {"en": "special-group", "zh": "特殊人群"}}


def rule(name: str, lang: str) -> str:
    """A constraint's name in words (no_worse_general_50000 -> payout of ordinary members
    at 50,000 CNY not below today's)."""
    if name.startswith("no_worse_"):
        who, _, at = name.removeprefix("no_worse_").partition("_")
        who_text = WHO.get(who, {}).get(lang, who)
        if at == "cap":
            return RULES["no_worse_cap"][lang].format(who=who_text)
        return RULES["no_worse"][lang].format(who=who_text, x=f"{float(at):,.0f}")
    for key, text in sorted(RULES.items(), key=lambda kv: -len(kv[0])):
        if name == key or name.startswith(key + "_"):
            tail = name[len(key) + 1:]
            if tail.isdigit():
                k = int(tail) + 1
                return text[lang].format(k=k, k1=k + 1)
            return text[lang]
    return name


def unit(name: str, lang: str) -> str:
    return UNITS.get(name, {}).get(lang, name)


def t(key: str, lang: str, **kw) -> str:
    """The text `key` in `lang`, formatted with `kw`."""
    text = TEXT[key][lang]
    return text.format(**kw) if kw else text
