"""Every label and sentence of the negotiation report, in English and Chinese.

Money is in the data's unit (`[data] currency`, which the forecast, plan.json and so the
report carry), never a constant: a text names it as `{cur}`, and Chinese right after a
figure ("1元", "万元") as `{cur_glued}`. CNY reads CNY in English and 元 in Chinese; any
other unit reads as it is given, in both languages (see `money_words`)."""

from __future__ import annotations

from pipelines.conventions import DEFAULT_CURRENCY

TEXT: dict[str, dict[str, str]] = {
    "title": {"en": "Critical illness insurance: plan proposals for {year}",
              "zh": "城乡居民大病保险 {year} 年方案建议"},
    "summary": {"en": "Summary", "zh": "摘要"},
    "verdict": {"en": "The verdict", "zh": "结论"},
    "contract": {"en": "The contract: settlement with the fund", "zh": "合同：与基金的结算"},
    "v_today": {
        "en": "At today's premium of {p} {cur} per capita the insurer expects {result} in "
              "{year}, with a {pl} chance of a loss.",
        "zh": "按现行人均筹资标准 {p} {cur}，{year} 年保险机构预计{result}，亏损概率 {pl}。"},
    "v_stops": {
        "en": "Proposal {name} is the lowest premium without an expected loss: {p} {cur} per "
              "capita ({change} than today's); it expects {result}, with a {pb} chance of a "
              "loss before settlement and {pa} after.",
        "zh": "方案{name}是没有预期亏损的最低筹资：人均筹资标准 {p} {cur}（较现行{change}）；"
              "预计{result}，结算前亏损概率 {pb}，结算后 {pa}。"},
    "v_none": {"en": "No proposal stops the loss.", "zh": "没有一个建议方案能止住亏损。"},
    "v_other": {"en": "Proposal {name}, at {p} {cur} per capita, expects {result} ({saving}).",
                "zh": "方案{name}（人均筹资标准 {p} {cur}）预计{result}（{saving}）。"},
    "v_nobody": {"en": "Under proposal {name} no member is paid less than today.",
                 "zh": "方案{name}下没有参保人的赔付低于现行方案。"},
    "v_less": {"en": "Under proposal {name} about {n} claimants a year are paid less than today, "
                     "together {cur} {amount} less.",
               "zh": "方案{name}下每年约 {n} 名患者的赔付低于现行方案，合计少 {amount} {cur}。"},
    "surplus_word": {"en": "surplus {x}", "zh": "结余 {x}"},
    "a_loss": {"en": "a loss of {cur} {x}", "zh": "亏损 {x} {cur}"},
    "a_surplus": {"en": "a surplus of {cur} {x}", "zh": "结余 {x} {cur}"},
    "break_even_word": {"en": "to break even", "zh": "收支平衡"},
    "more": {"en": "{x} more", "zh": "增加 {x}"},
    "less": {"en": "{x} less", "zh": "减少 {x}"},
    "unchanged": {"en": "unchanged", "zh": "不变"},
    "saves": {"en": "{cur} {x} less loss than today", "zh": "比现行少亏 {x} {cur}"},
    "same_loss": {"en": "the same expected loss as today", "zh": "预期亏损与现行相同"},
    "costs_more": {"en": "{cur} {x} more loss than today", "zh": "比现行多亏 {x} {cur}"},
    "c_surplus": {"en": "The insurer keeps a surplus up to {keep} of premium income; {ret} of "
                        "any surplus above it returns to the fund.",
                  "zh": "结余不超过保费收入 {keep} 的部分由保险机构留存，超出部分的 {ret} "
                        "返还基金。"},
    "c_no_sharing": {"en": "The insurer bears every loss alone (no loss sharing).",
                     "zh": "亏损全部由保险机构承担（不设风险分担）。"},
    "c_layer": {"en": "A loss between {lo} and {hi} of premium income: the fund bears {fund}.",
                "zh": "亏损在保费收入的 {lo} 至 {hi} 之间的部分，基金分担 {fund}。"},
    "c_above": {"en": "any amount", "zh": "以上"},
    "c_stop": {"en": "The insurer's loss stops at {s} of premium income (stop-loss).",
               "zh": "保险机构亏损以保费收入的 {s} 为限（止损线）。"},
    "c_shock": {"en": "Payouts caused by a policy change ({s} of payouts) are the fund's.",
                "zh": "政策调整导致的赔付（赔付的 {s}）由基金承担（政策性亏损）。"},
    "c_opex": {"en": "Operating cost is recognised up to {s} of premium income.",
               "zh": "经营费用按不超过保费收入的 {s} 核定。"},
    "expected_loss_before": {"en": "Expected loss before settlement ({cur})",
                             "zh": "结算前预期亏损（{cur}）"},
    "expected_loss_after": {"en": "Expected loss after settlement ({cur})",
                            "zh": "结算后预期亏损（{cur}）"},
    "prob_loss_before": {"en": "Probability of a loss before settlement",
                         "zh": "结算前亏损概率"},
    "prob_loss_after": {"en": "Probability of a loss after settlement", "zh": "结算后亏损概率"},
    "cvar_loss_before": {"en": "CVaR of the loss before settlement ({cur})",
                         "zh": "结算前亏损 CVaR（{cur}）"},
    "cvar_loss_after": {"en": "CVaR of the loss after settlement ({cur})",
                        "zh": "结算后亏损 CVaR（{cur}）"},
    "loss_p05_before": {"en": "Loss, 5 % end, before settlement ({cur})",
                        "zh": "结算前亏损 5% 分位（{cur}）"},
    "loss_p05_after": {"en": "Loss, 5 % end, after settlement ({cur})",
                       "zh": "结算后亏损 5% 分位（{cur}）"},
    "loss_p95_before": {"en": "Loss, 95 % end, before settlement ({cur})",
                        "zh": "结算前亏损 95% 分位（{cur}）"},
    "loss_p95_after": {"en": "Loss, 95 % end, after settlement ({cur})",
                       "zh": "结算后亏损 95% 分位（{cur}）"},
    "fund_topup": {"en": "Fund's expected top-up ({cur})", "zh": "基金预期分担（{cur}）"},
    "fund_refund": {"en": "Surplus expected back to the fund ({cur})",
                    "zh": "预期返还基金（{cur}）"},
    "term_year": {"en": "Year of the term", "zh": "合同年度"},
    "term_premium": {"en": "Premium per capita ({cur})", "zh": "人均筹资标准（{cur}）"},
    "term_loss_before": {"en": "Expected loss before ({cur})", "zh": "结算前预期亏损（{cur}）"},
    "term_p05_before": {"en": "Loss 5 % before ({cur})", "zh": "结算前 5% 分位（{cur}）"},
    "term_p95_before": {"en": "Loss 95 % before ({cur})", "zh": "结算前 95% 分位（{cur}）"},
    "term_loss_after": {"en": "Expected loss after ({cur})", "zh": "结算后预期亏损（{cur}）"},
    "term_p05_after": {"en": "Loss 5 % after ({cur})", "zh": "结算后 5% 分位（{cur}）"},
    "term_p95_after": {"en": "Loss 95 % after ({cur})", "zh": "结算后 95% 分位（{cur}）"},
    "term_prob_after": {"en": "Probability of a loss after", "zh": "结算后亏损概率"},
    "term_whole": {"en": "whole term", "zh": "合同期合计"},
    "band_from": {"en": "Band {k} from ({cur})", "zh": "第{k}段起点（{cur}）"},
    "band_ratio": {"en": "Band {k} ratio", "zh": "第{k}段报销比例"},
    "special_factor": {"en": "Special groups: deductible factor", "zh": "特殊群体：起付线系数"},
    "special_inc": {"en": "Special groups: ratio increase (points)",
                    "zh": "特殊群体：报销比例提高（百分点）"},
    "special_cap": {"en": "Special groups: cap ({cur})", "zh": "特殊群体：封顶线（{cur}）"},
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
                 "zh": "分年龄预测：发生率与例均年度费用"},
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
    "impact_change": {"en": "Change in payouts ({cur})", "zh": "赔付变化（{cur}）"},
    "impact_per": {"en": "Change per claimant ({cur})", "zh": "人均变化（{cur}）"},
    "cost_band": {"en": "annual cost ({cur})", "zh": "年度合规费用"},
    "group": {"en": "member group", "zh": "人群"},
    "status": {"en": "How the optimum is known: {status} ({method}, {plans} plans priced "
                     "exactly).",
               "zh": "最优性：{status}（{method}，精确计算了 {plans} 个方案）。"},
    "C": {"en": "C: lowest premium meeting the insurer's risk appetite, today's benefits",
          "zh": "方案C：风险预算（CVaR95）内亏损最小"},
    "year": {"en": "Year", "zh": "年度"},
    "insured": {"en": "Insured", "zh": "参保人数"},
    "insured_rate": {"en": "Insured rate", "zh": "参保率"},
    "premium_income": {"en": "Premium income ({cur})", "zh": "保费收入（{cur}）"},
    "payouts": {"en": "Payouts ({cur})", "zh": "赔付支出（{cur}）"},
    "loss": {"en": "Loss ({cur})", "zh": "亏损（{cur}）"},
    "loss_ratio": {"en": "Loss ratio", "zh": "赔付率"},
    "premium_per_capita": {"en": "Premium per capita ({cur})", "zh": "人均筹资标准（{cur}）"},
    "expected_payout": {"en": "Expected payouts ({cur})", "zh": "预期赔付（{cur}）"},
    "operating_cost": {"en": "Operating cost ({cur})", "zh": "经营费用（{cur}）"},
    "expected_loss": {"en": "Expected loss ({cur})", "zh": "预期亏损（{cur}）"},
    "loss_p05": {"en": "Loss, 5 % end of the range ({cur})", "zh": "亏损 5% 分位（{cur}）"},
    "loss_p95": {"en": "Loss, 95 % end of the range ({cur})", "zh": "亏损 95% 分位（{cur}）"},
    "effective_ratio": {"en": "Effective reimbursement ratio", "zh": "实际报销比例"},
    "prob_loss": {"en": "Probability of a loss", "zh": "亏损概率"},
    "cvar95_loss": {"en": "CVaR95 of the loss ({cur})", "zh": "亏损的 CVaR95（{cur}）"},
    "deductible": {"en": "Deductible ({cur})", "zh": "起付线（{cur}）"},
    "cap": {"en": "Annual cap ({cur})", "zh": "年度封顶线（{cur}）"},
    "special": {"en": "Special groups", "zh": "特殊群体"},
    "none": {"en": "none", "zh": "不设"},
    "cap_amount": {"en": "{v} {cur}", "zh": "{v} {cur}"},
    "cost_level": {"en": "Annual eligible cost ({cur})", "zh": "年度合规费用"},
    "cny_m": {"en": "{cur} M", "zh": "百万{cur_glued}"},
    "frontier_line": {"en": "frontier", "zh": "有效前沿"},
    "frontier_at": {"en": "At today's premium, {p} {cur} per capita; marks: premium per capita",
                    "zh": "现行人均筹资标准 {p} {cur}下；标注为人均筹资标准（{cur}）"},
    "effective_ratio_pct": {"en": "Effective reimbursement ratio (%)",
                            "zh": "实际报销比例（%）"},
    "expected_loss_m": {"en": "Expected loss, {cur} M", "zh": "预期亏损（百万{cur_glued}）"},
    "cost_level_k": {"en": "Annual eligible cost, {cur} k", "zh": "年度合规费用（万{cur_glued}）"},
    "payout_k": {"en": "Payout, {cur} k", "zh": "赔付（万{cur_glued}）"},
    "age_band": {"en": "Age band", "zh": "年龄段"},
    "constraint": {"en": "Rule", "zh": "约束"},
    "price": {"en": "Cost to the insurer", "zh": "对保险机构的代价"},
    "metric": {"en": "Measure", "zh": "指标"},
    "value": {"en": "Value", "zh": "数值"},
    "infeasible": {"en": "No plan meets every rule: {why}", "zh": "没有满足全部约束的方案：{why}"},
    "infeasible_unproved": {"en": "No plan found, and not proved that none exists: the "
                                   "search left parts of the plan space unsearched",
                            "zh": "未找到方案，但未能证明不存在可行方案：搜索未覆盖全部方案空间"},
    "infeasible_any": {"en": "No plan meets every rule; any one of these changes would allow "
                              "one: {changes}",
                       "zh": "没有满足全部约束的方案；以下任一调整即可：{changes}"},
    "infeasible_pairs": {"en": "No plan meets every rule and no single change would allow "
                                "one; these pairs would: {changes}",
                         "zh": "没有满足全部约束的方案，单项调整均不够；"
                               "以下成对调整可以：{changes}"},
    "infeasible_none": {"en": "No plan meets every rule, and no change of one rule and of "
                               "the premium would allow one{changes}",
                        "zh": "没有满足全部约束的方案，调整任一约束及筹资标准均不够{changes}"},
    "inf_effective_ratio": {"en": "lower the effective-ratio floor from {now} to {to}",
                            "zh": "实际报销比例下限由{now}降至{to}"},
    "inf_nominal_ratio": {"en": "lower the nominal ratio floor from {now} to {to}",
                          "zh": "名义报销比例下限由{now}降至{to}"},
    "inf_deductible_income": {"en": "allow a deductible of {to} of disposable income "
                                     "(now {now})",
                              "zh": "起付线可达人均可支配收入的{to}（现为{now}）"},
    "inf_profit_cap": {"en": "allow a surplus of {to} of premium (now {now})",
                       "zh": "允许结余达保费的{to}（现为{now}）"},
    "inf_premium": {"en": "premium {to} per capita instead of the fixed {now}",
                    "zh": "人均筹资标准{to}{cur_glued}，而非固定的{now}{cur_glued}"},
    # a fixed premium beyond the budget: the budget's edge moves with it
    "inf_premium_budget_max": {"en": "premium {to} per capita instead of the fixed {now}, "
                                     "the budget's maximum raised to it",
                               "zh": "人均筹资标准{to}{cur_glued}，而非固定的{now}{cur_glued}，"
                                     "筹资标准上限同时提高到{to}{cur_glued}"},
    "inf_premium_budget_min": {"en": "premium {to} per capita instead of the fixed {now}, "
                                     "the budget's minimum lowered to it",
                               "zh": "人均筹资标准{to}{cur_glued}，而非固定的{now}{cur_glued}，"
                                     "筹资标准下限同时降低到{to}{cur_glued}"},
    "inf_premium_max": {"en": "premium budget's maximum {now} -> {to} per capita",
                        "zh": "人均筹资标准上限由{now}{cur_glued}提高到{to}{cur_glued}"},
    "inf_premium_min": {"en": "premium budget's minimum {now} -> {to} per capita",
                        "zh": "人均筹资标准下限由{now}{cur_glued}降低到{to}{cur_glued}"},
    # a rule today's plan itself breaks (plan.json "today_breaks"), and what the plan
    # proposed does about it
    "tb_effective_ratio": {"en": "today's plan itself breaks the effective-ratio floor: its "
                                 "effective ratio is {value}, below the floor of {limit}",
                           "zh": "现行方案本身低于实际报销比例下限：其实际报销比例为{value}，"
                                 "下限为{limit}"},
    "tb_nominal_ratio": {"en": "today's plan itself breaks the nominal ratio floor: its lowest "
                               "ratio is {value}, below the floor of {limit}",
                         "zh": "现行方案本身低于名义报销比例下限：其最低一段比例为{value}，"
                               "下限为{limit}"},
    "tb_deductible_income": {"en": "today's plan itself breaks the deductible rule: its "
                                   "deductible of {cur} {value} is above the {cur} {limit} "
                                   "the share of disposable income allows",
                             "zh": "现行方案本身违反起付线规定：其起付线{value}{cur_glued}高于"
                                   "人均可支配收入规定比例允许的{limit}{cur_glued}"},
    "tb_ratios_increasing": {"en": "today's plan itself breaks the rule that ratios rise with "
                                   "cost: a band's ratio is {value} below the band's before it",
                             "zh": "现行方案本身违反报销比例随费用不降的规定：有一段比例比前一段"
                                   "低{value}"},
    "tb_profit_cap": {"en": "today's plan itself breaks the profit cap: its premium of {value} "
                            "{cur} per capita is above the {limit} {cur} at which the expected "
                            "surplus stays within the cap",
                      "zh": "现行方案本身超出利润上限：其人均筹资标准{value}{cur_glued}高于"
                            "预期结余不超过利润上限的{limit}{cur_glued}"},
    "tb_meets": {"en": "{what}; {name} meets it, so part of what it gives up against "
                       "today's plan is the price of that rule",
                 "zh": "{what}；{name}满足该规定，其相较现行方案的让步部分是满足该规定的代价"},
    "tb_kept": {"en": "{what}; {name} keeps today's benefits, so it breaks it too",
                "zh": "{what}；{name}保持现行待遇，因此同样不满足该规定"},
    "tb_proposal": {"en": "proposal {name}", "zh": "方案{name}"},
    "tb_plan": {"en": "the plan proposed", "zh": "建议方案"},
    "inf_pair": {"en": "{premium} together with relaxing {rule}",
                 "zh": "{premium}，同时放宽“{rule}”"},
    "inf_off": {"en": "switch off {rule}", "zh": "取消约束“{rule}”"},
    "frequency": {"en": "Claimants per member-year", "zh": "人均发生率"},
    "severity": {"en": "Mean annual cost per claimant ({cur})", "zh": "例均年度合规费用（{cur}）"},
    "observed": {"en": "observed", "zh": "实际"},
    "forecast_word": {"en": "forecast", "zh": "预测"},
    "floor": {"en": "Effective-ratio floor", "zh": "实际报销比例下限"},
    "sum_today": {
        "en": "Under today's plan the insurer expects {loss} in {year} "
              "(loss ratio {lr}, probability of a loss {pl}): premium income of {cur} {inc} "
              "against expected payouts of {cur} {pay} and operating cost of {cur} {opex}.",
        "zh": "按现行方案，{year} 年保险机构预计{loss}（赔付率 {lr}，亏损概率 {pl}）："
              "保费收入 {inc} {cur}，预期赔付 {pay} {cur}，经营费用 {opex} {cur}。"},
    "sum_prop": {
        "en": "{name}: premium {p} {cur} per capita, deductible {d} {cur}, cap {cap}; it expects "
              "{loss} ({delta}), effective ratio {er}.",
        "zh": "{name}：人均筹资标准 {p} {cur}，起付线 {d} {cur}，封顶线 {cap}；预计{loss}"
              "（{delta}），实际报销比例 {er}。"},
    "shadow_sentence": {
        "en": "{rule}: raising it by one {unit} {effect}.",
        "zh": "{rule}：每提高一个单位（{unit}），{effect}。"},
    "sh_loss_up": {"en": "costs the insurer {cur} {v} of expected loss",
                   "zh": "保险机构预期亏损增加 {v} {cur}"},
    "sh_loss_down": {"en": "saves the insurer {cur} {v} of expected loss",
                     "zh": "保险机构预期亏损减少 {v} {cur}"},
    "sh_prem_up": {"en": "raises the premium the insurer needs by {cur} {v} per capita",
                   "zh": "所需人均筹资标准提高 {v} {cur}"},
    "sh_prem_down": {"en": "lowers the premium the insurer needs by {cur} {v} per capita",
                     "zh": "所需人均筹资标准降低 {v} {cur}"},
    "no_binding": {"en": "No rule binds at this plan.", "zh": "该方案下无约束起作用。"},
    "sure": {"en": "How sure: ranges, backtest and the data's completeness",
             "zh": "可靠程度：区间、回测与数据完整性"},
    "sure_sentence": {
        "en": "Under today's plan premium income is expected at {cur} {inc} ({cur} {inc_lo} to "
              "{inc_hi} in 90 % of scenarios, as enrolment varies) and payouts at {cur} {pay} "
              "({cur} {pay_lo} to {pay_hi}); the result lies between {lo} and {hi}.",
        "zh": "按现行方案，保费收入预计 {inc} {cur}（90% 的情景在 {inc_lo} 至 {inc_hi} {cur}之间，"
              "随参保人数变动），赔付预计 {pay} {cur}（{pay_lo} 至 {pay_hi} {cur}）；经营结果在"
              "{lo}与{hi}之间。"},
    "sure_premium_income": {"en": "Premium income, expected ({cur})",
                            "zh": "保费收入：预期（{cur}）"},
    "sure_premium_income_p05": {"en": "Premium income, 5 % end ({cur})",
                                "zh": "保费收入：5% 分位（{cur}）"},
    "sure_premium_income_p95": {"en": "Premium income, 95 % end ({cur})",
                                "zh": "保费收入：95% 分位（{cur}）"},
    "sure_payouts": {"en": "Payouts, expected ({cur})", "zh": "赔付支出：预期（{cur}）"},
    "sure_payouts_p05": {"en": "Payouts, 5 % end ({cur})", "zh": "赔付支出：5% 分位（{cur}）"},
    "sure_payouts_p95": {"en": "Payouts, 95 % end ({cur})", "zh": "赔付支出：95% 分位（{cur}）"},
    "bt_sentence": {
        "en": "Back-tested (each past year forecast from the years before it; + means the "
              "forecast was above what happened): {parts}.",
        "zh": "回测（用此前各年预测过去每一年；正数表示预测高于实际）：{parts}。"},
    "bt_claimants_error": {"en": "claimants within {x}", "zh": "患者人数偏差 {x}"},
    "bt_severity_error": {"en": "the mean annual cost per claimant within {x}",
                          "zh": "例均年度费用偏差 {x}"},
    "bt_payout_error": {"en": "payouts within {x}", "zh": "赔付偏差 {x}"},
    "bt_loss_error_share": {"en": "the loss within {x} of premium income",
                            "zh": "亏损偏差为保费收入的 {x}"},
    "list_sep": {"en": ", ", "zh": "，"},
    "from_to": {"en": "{a} to {b}", "zh": "{a} 至 {b}"},
    "bt_measure": {"en": "Measure", "zh": "指标"},
    "bt_claim-frequency": {"en": "Frequency model's backtest", "zh": "发生率模型回测"},
    "bt_claim-severity": {"en": "Severity model's backtest", "zh": "费用模型回测"},
    "m_claimants_error": {"en": "Claimants: forecast against actual",
                          "zh": "患者人数：预测相对实际的偏差"},
    "m_poisson_deviance": {"en": "Claim frequency: Poisson deviance (lower is better)",
                           "zh": "发生率：泊松偏差（越小越好）"},
    "m_gini": {"en": "Claim frequency: Gini of the risk ranking (higher is better)",
               "zh": "发生率：风险排序的基尼系数（越大越好）"},
    "m_severity_error": {"en": "Mean annual cost per claimant: forecast against actual",
                         "zh": "例均年度费用：预测相对实际的偏差"},
    "m_gamma_deviance": {"en": "Mean annual cost per claimant: gamma deviance (lower is "
                               "better)",
                         "zh": "例均年度费用：伽马偏差（越小越好）"},
    "m_layer_error": {"en": "Cost layers: mean absolute error",
                      "zh": "费用分层：平均绝对误差"},
    "m_above_deductible_error": {"en": "Eligible cost above the deductible: forecast against "
                                       "actual",
                                 "zh": "起付线以上合规费用：预测相对实际的偏差"},
    "m_payout_error": {"en": "Payouts: forecast against actual",
                       "zh": "赔付支出：预测相对实际的偏差"},
    "m_loss_error_share": {"en": "Loss: forecast error as a share of premium income",
                           "zh": "亏损：预测误差占保费收入的比例"},
    "dev_sentence": {
        "en": "The latest year, {year}, is not complete: the eligible cost settled by {as_of} "
              "comes to {cur} {reported}; completed by {method} it is {cur} {completed} (factor "
              "{factor}; {level} range {cur} {low} to {high}).",
        "zh": "最近一年（{year} 年）尚未结算完毕：截至 {as_of} 已结算的合规费用为 "
              "{reported} {cur}，按{method}补足后为 {completed} {cur}（进展因子 {factor}；"
              "{level} 区间 {low} 至 {high} {cur}）。"},
    "dev_key": {"en": "Completion of the latest year", "zh": "最近一年的结算进展"},
    "dev_as_of": {"en": "Data as of", "zh": "数据截至"},
    "dev_year": {"en": "Year", "zh": "年度"},
    "dev_reported": {"en": "Eligible cost settled ({cur})", "zh": "已结算合规费用（{cur}）"},
    "dev_completed": {"en": "Completed ({cur})", "zh": "补足后合规费用（{cur}）"},
    "dev_factor": {"en": "Completion factor", "zh": "进展因子"},
    "dev_low": {"en": "Completed, low end ({cur})", "zh": "补足后区间下限（{cur}）"},
    "dev_high": {"en": "Completed, high end ({cur})", "zh": "补足后区间上限（{cur}）"},
    "dev_method": {"en": "Method", "zh": "方法"},
    "dev_level": {"en": "Coverage of the range", "zh": "区间覆盖率"},
    "grp_ordinary": {"en": "ordinary members", "zh": "普通参保人"},
    "grp_special": {"en": "special groups", "zh": "特殊人群"},
    "band_above": {"en": "{x} and above", "zh": "{x}以上"},
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
    "no_worse": {"en": "payout of {who} members at {x} {cur} not below today's",
                 "zh": "{who}年度费用{x}{cur_glued}时赔付不低于现行"},
    "no_worse_cap": {"en": "{who} members reach the cap no later than today's payout does",
                     "zh": "{who}达到封顶线时的赔付不低于现行"},
    "no_worse_beyond": {"en": "the ratio of {who} members above every breakpoint not below "
                              "today's",
                        "zh": "{who}最高费用段报销比例不低于现行"},
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
    "{cur} paid at that cost": {"en": "{cur} paid at that cost",
                                "zh": "该费用水平下赔付1{cur_glued}"},
    "{cur} of surplus": {"en": "{cur} of surplus", "zh": "结余1{cur_glued}"},
    "{cur} of loss": {"en": "{cur} of loss", "zh": "亏损1{cur_glued}"},
    "{cur} of CVaR": {"en": "{cur} of CVaR", "zh": "CVaR 1{cur_glued}"},
    "{cur} of premium per capita": {"en": "{cur} of premium per capita",
                                    "zh": "人均筹资1{cur_glued}"},
    "{cur} of deductible": {"en": "{cur} of deductible", "zh": "起付线1{cur_glued}"},
    "point of ratio": {"en": "point of ratio", "zh": "报销比例一个百分点"},
    "{cur} of cap": {"en": "{cur} of cap", "zh": "封顶线1{cur_glued}"},
    "{cur} paid at a cost level": {"en": "{cur} paid at a cost level",
                                   "zh": "某费用水平下赔付1{cur_glued}"},
    "point of nominal ratio": {"en": "point of nominal ratio", "zh": "名义报销比例一个百分点"},
    # the objective's unit of a shadow price (plan.json "objective_unit")
    "{cur} of expected loss": {"en": "{cur} of expected loss", "zh": "预期亏损1{cur_glued}"},
}


# the optimiser's status and method words (plan.json "solver"), in Chinese
SOLVER_WORDS: dict[str, str] = {
    "Optimal": "已证明最优", "Not proved": "未证明最优",
    "Not proved: the search's price and the evaluator's differ":
        "未证明最优：搜索定价与精确评估不一致",
    "exhaustive": "穷举", "branch and bound": "分支定界", "today's benefits": "保持现行待遇"}


def solver_word(text: str, lang: str) -> str:
    """A solver status or method as the report's language says it."""
    return SOLVER_WORDS.get(text, text) if lang == "zh" else text


WHO = {"general": {"en": "ordinary", "zh": "普通参保人"},
       "special": {"en": "special-group", "zh": "特殊人群"}}


def money_words(currency: str, lang: str) -> dict[str, str]:
    """How a text of `lang` names the money unit `currency` (user text, inserted as a value,
    never as part of a template): `cur` on its own, `cur_glued` right after a figure. CNY is
    元 in Chinese, glued to its figure (1元, 1.5万元); another unit is written as given, in
    Chinese after a space when it starts with a Latin letter (1 HKD, 1.5万 HKD; 1千元)."""
    if lang == "zh":
        word = "元" if currency == "CNY" else currency
        return {"cur": word, "cur_glued": (" " if word[:1].isascii() else "") + word}
    return {"cur": currency, "cur_glued": f" {currency}"}


def rule(name: str, lang: str, currency: str) -> str:
    """A constraint's name in words (no_worse_general_50000 -> payout of ordinary members
    at 50,000 CNY not below today's)."""
    if name.startswith("no_worse_"):
        who, _, at = name.removeprefix("no_worse_").partition("_")
        who_text = WHO.get(who, {}).get(lang, who)
        if at in ("cap", "beyond"):
            return RULES[f"no_worse_{at}"][lang].format(who=who_text)
        whole, dot, part = at.partition(".")
        if whole.isdigit() and (not dot or part.isdigit()):  # 50000, or 7.5 (thousands)
            x = f"{int(whole):,}" + (f".{part}" if dot else "")
            return RULES["no_worse"][lang].format(who=who_text, x=x,
                                                  **money_words(currency, lang))
        return name  # not a row ciplan writes (a plan file from elsewhere): as it is
    for key, text in sorted(RULES.items(), key=lambda kv: -len(kv[0])):
        if name == key or name.startswith(key + "_"):
            tail = name[len(key) + 1:]
            if tail.isdigit():
                k = int(tail) + 1
                return text[lang].format(k=k, k1=k + 1)
            return text[lang]
    return name


def unit(name: str, lang: str, currency: str) -> str:
    """A shadow price's unit as the optimiser names it in the plans' money unit ("HKD of
    cap"; plans made before it did say "CNY of cap" whatever their unit) in words, in
    `currency`; a name ciplan does not write as it is."""
    for key, texts in UNITS.items():
        if name in {key.replace("{cur}", c) for c in (currency, DEFAULT_CURRENCY)}:
            return texts[lang].format(**money_words(currency, lang))
    return name


def money(x: float) -> str:
    return f"{x:,.0f}"


def pct(x: float) -> str:
    return f"{x:.1%}"


def premium(x: float) -> str:
    """A premium at the negotiating step: at most 2 decimals, no trailing zeros."""
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def t(key: str, lang: str, currency: str | None = None, **kw) -> str:
    """The text `key` in `lang`, formatted with `kw`; a text naming money needs the
    `currency` (without it: KeyError, never a unit made up)."""
    if currency is not None:
        kw |= money_words(currency, lang)
    return TEXT[key][lang].format(**kw)
