"""Why no plan meets a proposal's rules, in the report's language: rendered from the
changes the optimiser found (`InfeasibleError.changes`, kept in plan.json), each with its
figures, rather than from the optimiser's English sentence."""

from __future__ import annotations

from collections import defaultdict

from pipelines.report.labels import RULES, money, pct, premium, t

# a change of one of these rules reads "from {now} to {to}" with shares as percentages
SHARE_RULES = ("effective_ratio", "nominal_ratio", "deductible_income", "profit_cap")
PREMIUM_RULES = ("premium", "premium_max", "premium_min")


def rule_name(name: str, lang: str) -> str:
    """A rule as people say it (a band number it may name left out)."""
    text = RULES.get(name, {}).get(lang, name)
    return text.format_map(defaultdict(str)).replace("  ", " ").strip()


def change_text(change: dict, lang: str, currency: str) -> str:
    """One change that would let a plan through, in words with its figures (a premium in
    `currency`)."""
    if "pair" in change:
        return t("inf_pair", lang, premium=change_text(change["pair"][0], lang, currency),
                 rule=rule_name(change["pair"][1], lang))
    rule = change["rule"]
    if change.get("off"):
        return t("inf_off", lang, rule=rule_name(rule, lang))
    if rule in SHARE_RULES:
        return t(f"inf_{rule}", lang, now=pct(change["now"]), to=pct(change["to"]))
    if rule in PREMIUM_RULES:
        key = f"inf_{rule}_budget_{change['budget']}" if change.get("budget") else f"inf_{rule}"
        return t(key, lang, currency, now=premium(change["now"]), to=premium(change["to"]))
    raise ValueError(f"an infeasibility change of an unknown rule {rule!r}")


# how the figures of a rule today's plan breaks read (plan.json "today_breaks"): shares,
# money, or a premium per capita
BREAK_FIGURES = {"effective_ratio": pct, "nominal_ratio": pct, "deductible_income": money,
                 "ratios_increasing": pct, "profit_cap": premium}


def today_break_text(found: dict, lang: str, currency: str, proposal: str | None) -> str:
    """A rule today's plan itself breaks, with its figures (money in `currency`), and what
    `proposal` (A, B, C; None: a plan of `ciplan optimize`) does about it: meets it, or
    keeps today's benefits and breaks it too."""
    rule = found["rule"]
    if rule not in BREAK_FIGURES:
        raise ValueError(f"a rule today's plan breaks that ciplan does not name: {rule!r}")
    fmt = BREAK_FIGURES[rule]
    what = t(f"tb_{rule}", lang, currency, value=fmt(found["value"]), limit=fmt(found["limit"]))
    name = t("tb_proposal", lang, name=proposal) if proposal else t("tb_plan", lang)
    return t("tb_kept" if found.get("kept") else "tb_meets", lang, what=what, name=name)


def infeasible_text(doc: dict, lang: str, currency: str) -> str:
    """Why a plan folder holds no plan: the optimiser's sentence in English, the changes
    it found rendered in other languages (its sentence when a folder has none)."""
    found = doc.get("infeasible_changes")
    if found and found.get("kind") == "unproved":
        return t("infeasible_unproved", lang)
    if lang == "en" or not found:
        return t("infeasible", lang, why=doc["infeasible"])
    sep = "；" if lang == "zh" else "; "
    changes = sep.join(change_text(c, lang, currency) for c in found["changes"])
    return t(f"infeasible_{found['kind']}", lang, changes=changes)
