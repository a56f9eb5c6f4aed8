"""Why no plan meets a proposal's rules, in the report's language: rendered from the
changes the optimiser found (`InfeasibleError.changes`, kept in plan.json), each with its
figures, rather than from the optimiser's English sentence."""

from __future__ import annotations

from collections import defaultdict

from pipelines.report.labels import RULES, t

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
        return t(f"inf_{rule}", lang, now=f"{change['now']:.1%}", to=f"{change['to']:.1%}")
    if rule in PREMIUM_RULES:
        return t(f"inf_{rule}", lang, currency,
                 now=f"{change['now']:,.2f}".rstrip("0").rstrip("."),
                 to=f"{change['to']:,.2f}".rstrip("0").rstrip("."))
    raise ValueError(f"an infeasibility change of an unknown rule {rule!r}")


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
