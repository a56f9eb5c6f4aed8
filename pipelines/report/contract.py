"""The contract section of the report: the settlement terms in words, each proposal before
and after settlement, the fund's view, and the contract's term year by year (plan.json
"contract", "kpis"."settlement", "term")."""

from __future__ import annotations

import html

from pipelines.report.labels import t

SETTLED_ROWS = (("expected_loss", "money"), ("prob_loss", "pct"), ("cvar_loss", "money"),
                ("loss_p05", "money"), ("loss_p95", "money"))


def terms_in_words(terms: dict, lang: str) -> str:
    """The settlement terms as a negotiator reads them."""
    parts = [t("c_surplus", lang, keep=f"{terms['surplus_keep']:.0%}",
               ret=f"{terms['surplus_return']:.0%}")]
    layers = terms.get("loss_layers") or []
    if not layers:
        parts.append(t("c_no_sharing", lang))
    for lo, hi, share in layers:
        top = t("c_above", lang) if hi in (None, "none") else f"{float(hi):.0%}"
        parts.append(t("c_layer", lang, lo=f"{float(lo):.0%}", hi=top,
                       fund=f"{float(share):.0%}"))
    if terms.get("stop_loss") not in (None, "none"):
        parts.append(t("c_stop", lang, s=f"{float(terms['stop_loss']):.0%}"))
    if terms.get("policy_shock"):
        parts.append(t("c_shock", lang, s=f"{terms['policy_shock']:.0%}"))
    if terms.get("opex_cap_share") not in (None, "none"):
        parts.append(t("c_opex", lang, s=f"{float(terms['opex_cap_share']):.0%}"))
    return " ".join(parts)


def settled_rows(columns, money, pct) -> list[tuple[str, list[tuple[float, str]]]]:
    """Before and after settlement side by side for today's plan and each proposal, then
    the fund's expected top-up and refund. `columns`: (name, plan, kpis) of each."""
    fmt = {"money": money, "pct": pct}
    out = []
    for key, kind in SETTLED_ROWS:
        for when in ("before", "after"):
            name = f"{key}_{when}"
            vals = [(k.get("settlement") or {}).get(name, float("nan")) for _, _, k in columns]
            out.append((name, [(v, fmt[kind](v)) for v in vals]))
    for name in ("fund_topup", "fund_refund"):
        vals = [(k.get("settlement") or {}).get(name, float("nan")) for _, _, k in columns]
        out.append((name, [(v, money(v)) for v in vals]))
    return out


def term_rows(doc: dict, money, pct) -> list[tuple[str, list[tuple[float, str]]]]:
    """One row per year of the term and one for the whole term."""
    cols = ("premium_per_capita", "deductible", "expected_loss_before", "loss_p05_before",
            "loss_p95_before", "expected_loss_after", "loss_p05_after", "loss_p95_after",
            "prob_loss_after", "fund_topup", "fund_refund")
    rows = []
    for r in doc.get("term", []):
        vals = []
        for c in cols:
            v = r.get(c)
            if v is None or (c in ("premium_per_capita", "deductible") and r["year"] == "term"):
                vals.append((float("nan"), "–"))
            elif c == "prob_loss_after":
                vals.append((v, pct(v)))
            elif c == "premium_per_capita":
                vals.append((v, f"{v:.2f}"))
            else:
                vals.append((v, money(v)))
        rows.append((str(r["year"]), vals))
    return rows


TERM_HEAD = ("term_premium", "deductible", "term_loss_before", "term_p05_before",
             "term_p95_before", "term_loss_after", "term_p05_after", "term_p95_after",
             "term_prob_after", "fund_topup", "fund_refund")


def escape(text: str) -> str:
    return html.escape(text)
