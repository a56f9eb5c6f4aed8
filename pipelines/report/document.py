"""`ciplan report`: the negotiation report — one self-contained HTML file (inline SVG charts,
printable on A4) and the same tables in XLSX — from the plan folders `ciplan optimize`
wrote. Every number comes from plan.json, i.e. from the exact evaluator."""

from __future__ import annotations

import contextlib
import functools
import html
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from forecasting.data.publish import publish, read_manifest
from forecasting.errors import InputError, UserError
from forecasting.failpoints import stop_here
from forecasting.scheme.in_force import plan_from_dict
from pipelines.conventions import PLAN_FILE, PROPOSALS, check_lang, currency_of, proposal_of
from pipelines.report import contract, sure
from pipelines.report.infeasible import BREAK_FIGURES, infeasible_text, today_break_text
from pipelines.report.labels import (
    money,
    money_words,
    pct,
    premium,
    rule,
    solver_word,
    t,
    unit,
)
from pipelines.report.plots import font_family, new_figure

# the parts of plan.json (and of its provenance) the report reads, by type
PLAN_TABLES = {"solver": dict, "contract": dict, "provenance": dict, "term": list,
               "status_quo_term": list, "shadow_prices": list, "member_impact": list,
               "today_breaks": list}
PROVENANCE_TABLES = {"history": list, "by_age": list, "backtest": dict,
                     "development": dict, "model_versions": dict}
# the numbers the report reads in each row of those lists and tables (provenance)
PROVENANCE_NUMBERS = {
    "history": ("insured", "insured_rate", "premium_income", "payouts", "loss", "loss_ratio"),
    "development": ("reported", "completed", "factor", "low", "high")}
# ... and in each row of plan.json's own lists: numbers, and texts the report looks up
PLAN_NUMBERS = {"member_impact": ("claimants", "gain", "lose", "change"),
                "shadow_prices": ("per_unit",), "today_breaks": ("value", "limit")}
PLAN_TEXTS = {"member_impact": ("by",), "shadow_prices": ("constraint", "unit"),
              "today_breaks": ("rule",)}
# the KPIs of a plan the report reads (plan.json "kpis" and "status_quo"."kpis"); the
# last two are tables, the others numbers
REPORT_KPIS = ("premium_per_capita", "premium_income", "expected_payout", "operating_cost",
               "expected_loss", "loss_p05", "loss_p95", "loss_ratio", "effective_ratio",
               "prob_loss", "cvar95_loss", "insured", "payout_at", "payout_by_age")


@dataclass(frozen=True)
class Proposal:
    key: str              # A, B, C
    doc: dict             # plan.json
    frontier: pd.DataFrame | None
    content_hash: str     # of the plan folder (its manifest)

    @property
    def feasible(self) -> bool:
        return "kpis" in self.doc


def read_plans(dirs: list[Path]) -> list[Proposal]:
    """Plan folders in proposal order (A, B, C): each a complete `ciplan optimize` folder
    (manifest verified) whose plan.json holds what the report reads; otherwise a one-line
    InputError naming the folder or file."""
    out = []
    for d in dirs:
        manifest = read_manifest(Path(d), "plan")
        doc = plan_document(Path(d) / PLAN_FILE)
        key = doc.get("proposal") or proposal_of(doc.get("objective"))
        out.append(Proposal(key, doc, _frontier(Path(d) / "frontier.csv"),
                            manifest["content_hash"]))
    if not any(p.feasible for p in out):
        raise UserError("none of the plan folders holds a plan (all infeasible)")
    plans_currency(out, dirs)
    return sorted(out, key=lambda p: p.key)


def plan_currency(doc: dict) -> str:
    """The money unit of a plan.json: its own "currency", else its forecast's (plans of
    format 3 carry it only in the provenance), else CNY (plans from before either)."""
    return currency_of(doc, doc.get("provenance") or {})


def plans_currency(proposals: list[Proposal], dirs: list[Path] | None = None) -> str:
    """The one money unit of the plans a report shows; plans in different units (made
    from forecasts of different `[data] currency`) are refused, naming the folders."""
    units = [plan_currency(p.doc) for p in proposals]
    if len(set(units)) > 1:
        names = dirs or [p.key for p in proposals]
        said = ", ".join(f"{name}: {u!r}" for name, u in zip(names, units, strict=True))
        raise UserError(f"the plans are in different money units ({said}); optimise them "
                        "again from one forecast")
    return units[0]


def plan_document(path: Path) -> dict:
    """plan.json checked for what the report reads: objective, year, proposal (A, B, C or
    none), and a plan with its KPIs and today's, or the reason it is infeasible."""
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a ciplan plan (expected a JSON table)")
    for key in ("objective", "year"):
        if key not in doc:
            raise InputError(f"{path}: not a ciplan plan (no key {key!r})")
    if doc.get("proposal") not in (None, *PROPOSALS):
        raise InputError(f"{path}: key 'proposal': expected one of {', '.join(PROPOSALS)} "
                         f"or none; got {doc['proposal']!r}")
    _check_shapes(path, doc, PLAN_TABLES)
    _check_shapes(path, doc.get("provenance") or {}, PROVENANCE_TABLES, "provenance.")
    _check_currency(path, doc)
    _check_numbers(path, doc.get("provenance") or {})
    _check_rows(path, doc, PLAN_NUMBERS, (int, float), "numbers")
    _check_rows(path, doc, PLAN_TEXTS, str, "text")
    unknown = [b["rule"] for b in doc.get("today_breaks") or [] if b["rule"] not in BREAK_FIGURES]
    if unknown:
        raise InputError(f"{path}: today_breaks rule: expected one of "
                         f"{', '.join(BREAK_FIGURES)}; got {unknown[0]!r}")
    if "infeasible" in doc:
        return doc
    for where, part in (("", doc), ("status_quo.", doc.get("status_quo"))):
        if not isinstance(part, dict) or not isinstance(part.get("kpis"), dict):
            raise InputError(f"{path}: not a ciplan plan (no table {where}kpis)")
        plan_from_dict(f"{path}: {where}plan", part.get("plan") or {})
        missing = [k for k in REPORT_KPIS if k not in part["kpis"]]
        if missing:
            raise InputError(f"{path}: {where}kpis lacks {', '.join(missing)}")
        wrong = [k for k in REPORT_KPIS[:-2] if isinstance(part["kpis"][k], bool)
                 or not isinstance(part["kpis"][k], int | float)]
        if wrong:
            raise InputError(f"{path}: {where}kpis {', '.join(wrong)}: expected numbers")
    return doc


def _check_currency(path: Path, doc: dict) -> None:
    """The money unit a plan names (its own, its forecast's), where it names one, is text:
    the report prints it beside every amount."""
    for where, part in (("", doc), ("provenance.", doc.get("provenance") or {})):
        value = part.get("currency")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InputError(f"{path}: {where}currency: expected the money unit as text; "
                             f"got {value!r}")


def _check_numbers(path: Path, provenance: dict) -> None:
    """The rows of the provenance's history (and its development table) hold numbers
    where the report formats numbers (PROVENANCE_NUMBERS); the backtest holds a table per
    model."""
    _check_rows(path, provenance, PROVENANCE_NUMBERS, (int, float), "numbers",
                "provenance.")
    if not all(isinstance(v, dict) for v in (provenance.get("backtest") or {}).values()):
        raise InputError(f"{path}: not a ciplan plan (provenance.backtest holds a "
                         "non-table)")


def _check_rows(path: Path, part: dict, fields: dict[str, tuple[str, ...]], kind: tuple
                | type, said: str, where: str = "") -> None:
    """Each row of the lists (or the table) named in `fields` holds a value of `kind` (not
    true/false) in each named field: what the report formats or looks up there."""
    for key, names in fields.items():
        value = part.get(key)
        rows = [value] if isinstance(value, dict) else value or []
        for row in rows:
            wrong = [n for n in names if isinstance(row.get(n), bool)
                     or not isinstance(row.get(n), kind)]
            if wrong:
                raise InputError(f"{path}: {where}{key} {', '.join(wrong)}: expected {said}")


def _check_shapes(path: Path, part, shapes: dict[str, type], where: str = "") -> None:
    """Each key of `shapes` that `part` holds (and is not null) is of its type: a table
    (dict) or a list of tables, what the report reads it as."""
    if not isinstance(part, dict):
        raise InputError(f"{path}: not a ciplan plan ({where.rstrip('.')} is not a table)")
    for key, kind in shapes.items():
        value = part.get(key)
        if value is None:
            continue
        rows = value if kind is list and isinstance(value, list) else None
        if not isinstance(value, kind) or (rows is not None and not all(
                isinstance(r, dict) for r in rows)):
            what = "a table" if kind is dict else "a list of tables"
            raise InputError(f"{path}: not a ciplan plan ({where}{key} is not {what})")


def _frontier(path: Path) -> pd.DataFrame | None:
    """frontier.csv of a plan folder, None when absent or empty."""
    if not path.exists() or path.stat().st_size <= 1:
        return None
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable frontier table ({exc})") from None


# ---------------------------------------------------------------- formatting


def wan_figure(x: float) -> str:
    """An amount in 万 (10,000) as Chinese writes it: 15000 -> 1.5万, 435333 -> 43.53万;
    below 10,000 as it is (5,000)."""
    return f"{premium(x / 10_000)}万" if abs(x) >= 10_000 else money(x)


def cell(value: float, text: str | None = None) -> str:
    """A table cell that shows `text` and carries the exact value for machines."""
    shown = text if text is not None else money(value)
    return f'<td data-value="{value!r}">{html.escape(shown)}</td>'


def row(label: str, cells: list[str]) -> str:
    return f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>"


def table(head: list[str], rows: list[str], cls: str = "") -> str:
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(rows)
    return f'<table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>'


@functools.cache
def chart_style() -> dict:
    """Matplotlib settings of the report's charts: text stays text in the SVG (the
    browser's fonts draw CJK), a CJK font measures Chinese labels if the machine has
    one, and no text is read as mathtext (a money unit is user text: "$" is a dollar, not
    maths). Applied per chart, never to the process."""
    return {"svg.fonttype": "none", "font.family": font_family(), "text.parse_math": False}


def svg(fig) -> str:
    """A figure as inline SVG without the XML prologue (and so without any URL)."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        # without a CJK font here matplotlib only mis-measures Chinese labels; the browser
        # draws them with its own fonts
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        warnings.filterwarnings("ignore", message="findfont")
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


# ---------------------------------------------------------------- the report


def stopless_notes(props: list[Proposal]) -> list[str]:
    """The optimiser's notes on why no plan stops the loss (plan.json "notes"), less those
    on the rules today's plan breaks (the summary says them, in the report's language)."""
    said = {n for p in props for n in p.doc.get("notes", [])}
    said -= {today_break_text(b, "en", plan_currency(p.doc), p.doc.get("proposal"))
             for p in props for b in p.doc.get("today_breaks") or []}
    return sorted(said)


def paid_less(impact: list[dict]) -> tuple[float, float]:
    """Claimants a year paid less than today and the payouts they lose (money), from
    plan.json "member_impact" (its cost bands partition the claimants)."""
    rows = [r for r in impact if r["by"] == "cost_band"]
    return (float(sum(r["lose"] for r in rows)),
            float(sum(-r["change"] for r in rows if r["change"] < 0)))


class Report:
    """Tables and charts of the report for one language."""

    def __init__(self, proposals: list[Proposal], lang: str):
        self.lang = check_lang(lang)
        self.props = proposals
        first = next(p for p in proposals if p.feasible)
        self.sq = first.doc["status_quo"]
        self.prov = first.doc.get("provenance", {})
        self.year = first.doc["year"]
        self.space = first.doc.get("space", {})
        self.currency = plans_currency(proposals)  # the money unit of every amount

    def tx(self, key: str, **kw) -> str:
        return t(key, self.lang, self.currency, **kw)

    @property
    def k_unit(self) -> float:
        """The money unit of the member chart: thousands (CNY k), 万 (10,000) in Chinese."""
        return 10_000.0 if self.lang == "zh" else 1_000.0

    def columns(self) -> list[tuple[str, dict, dict]]:
        """(name, plan, kpis) of today's plan and each feasible proposal."""
        cols = [(self.tx("status_quo"), self.sq["plan"], self.sq["kpis"])]
        cols += [(self.tx(p.key), p.doc["plan"], p.doc["kpis"]) for p in self.props
                 if p.feasible]
        return cols

    # --- tables (each returns a DataFrame for XLSX and HTML rows)

    def kpi_rows(self) -> list[tuple[str, list[tuple[float, str]]]]:
        cols = self.columns()
        spec = [("premium_per_capita", lambda k: (k["premium_per_capita"],
                                                  premium(k["premium_per_capita"]))),
                ("premium_income", lambda k: (k["premium_income"], money(k["premium_income"]))),
                ("expected_payout", lambda k: (k["expected_payout"],
                                               money(k["expected_payout"]))),
                ("operating_cost", lambda k: (k["operating_cost"], money(k["operating_cost"]))),
                ("expected_loss", lambda k: (k["expected_loss"], self.loss(k["expected_loss"]))),
                ("loss_p05", lambda k: (k["loss_p05"], self.loss(k["loss_p05"]))),
                ("loss_p95", lambda k: (k["loss_p95"], self.loss(k["loss_p95"]))),
                ("loss_ratio", lambda k: (k["loss_ratio"], pct(k["loss_ratio"]))),
                ("effective_ratio", lambda k: (k["effective_ratio"], pct(k["effective_ratio"]))),
                ("prob_loss", lambda k: (k["prob_loss"], pct(k["prob_loss"]))),
                ("cvar95_loss", lambda k: (k["cvar95_loss"], self.loss(k["cvar95_loss"])))]
        return [(self.tx(key), [f(k) for _, _, k in cols]) for key, f in spec]

    def term_rows(self) -> list[tuple[str, list[tuple[float | None, str]]]]:
        """Premium, deductible, each band's lower edge and ratio, cap and the special
        groups' terms, every one a number (NaN where a plan has no such band)."""
        cols = self.columns()
        plans = [p for _, p, _ in cols]

        def each(f, fmt):
            out = []
            for p in plans:
                v = f(p)
                out.append((float("nan"), "–") if v is None else
                           (None, self.tx("none")) if v == "none" else (float(v), fmt(v)))
            return out

        def band(p, k, what):
            lows = [p["deductible"], *p["band_edges"]]
            if k >= len(p["ratios"]):
                return None
            return lows[k] if what == "from" else p["ratios"][k]

        n = max(len(p["ratios"]) for p in plans)
        rows = [(self.tx("premium_per_capita"), each(lambda p: p["premium_per_capita"],
                                                     premium)),
                (self.tx("deductible"), each(lambda p: p["deductible"], money))]
        for k in range(n):
            rows.append((self.tx("band_from", k=k + 1),
                         each(lambda p, k=k: band(p, k, "from"), self.wan)))
            rows.append((self.tx("band_ratio", k=k + 1),
                         each(lambda p, k=k: band(p, k, "ratio"), lambda v: f"{v:.0%}")))
        rows += [(self.tx("cap"), each(lambda p: p["cap"], money)),
                 (self.tx("special_factor"),
                  each(lambda p: p["special"]["deductible_factor"], lambda v: f"{v:g}")),
                 (self.tx("special_inc"),
                  each(lambda p: p["special"]["ratio_increment"] * 100, lambda v: f"{v:g}")),
                 (self.tx("special_cap"), each(lambda p: p["special"]["cap"], money))]
        return rows

    def wan(self, x: float) -> str:
        """An amount of money as a negotiator writes it: 15,000 in English, 1.5万元 in
        Chinese (1.5万 HKD in another unit)."""
        if self.lang == "zh" and abs(x) >= 10_000:
            return f"{wan_figure(x)}{self.glued}"
        return money(x)

    @property
    def glued(self) -> str:
        """The money unit right after a figure: 元 in Chinese for CNY, " HKD" for HKD."""
        return money_words(self.currency, self.lang)["cur_glued"]

    def band(self, key: str) -> str:
        """An annual-cost band of the member-impact table ("15,000–50,000", "435,333–") as
        a negotiator writes it: 15,000–50,000 and 435,333 and above; in Chinese
        1.5万–5万元 and 43.53万元以上 (the money unit after the figures)."""
        lo, _, hi = key.partition("–")
        try:
            lo_x, hi_x = float(lo.replace(",", "")), float(hi.replace(",", "") or "nan")
        except ValueError:
            return key
        figure = wan_figure if self.lang == "zh" else money
        unit = self.glued if self.lang == "zh" else ""
        if np.isnan(hi_x):
            return self.tx("band_above", x=f"{figure(lo_x)}{unit}")
        return f"{figure(lo_x)}–{figure(hi_x)}{unit}"

    def impact_key(self, r: dict) -> str:
        """The group of a member-impact row in words."""
        if r["by"] == "cost_band":
            return self.band(str(r["key"]))
        if r["by"] == "group" and r["key"] in ("ordinary", "special"):
            return self.tx(f"grp_{r['key']}")
        return str(r["key"])

    def member_rows(self):
        cols = self.columns()
        return [(self.wan(float(x)), [(k["payout_at"][x], money(k["payout_at"][x]))
                                   for _, _, k in cols])
                for x in cols[0][2]["payout_at"]]

    def age_rows(self):
        cols = self.columns()
        bands = list(cols[0][2]["payout_by_age"])
        return [(b, [(k["payout_by_age"].get(b, 0.0), money(k["payout_by_age"].get(b, 0.0)))
                     for _, _, k in cols]) for b in bands]

    def history_rows(self):
        hist = self.prov.get("history", [])
        out = [(str(h["year"]), [(h["insured"], money(h["insured"])),
                                 (h["insured_rate"], pct(h["insured_rate"])),
                                 (h["premium_income"], money(h["premium_income"])),
                                 (h["payouts"], money(h["payouts"])),
                                 (h["loss"], self.loss(h["loss"])),
                                 (h["loss_ratio"], pct(h["loss_ratio"]))]) for h in hist]
        k = self.sq["kpis"]
        out.append((f"{self.year} ({self.tx('forecast_word')})", [
            (k["insured"], money(k["insured"])), (float("nan"), "–"),
            (k["premium_income"], money(k["premium_income"])),
            (k["expected_payout"], money(k["expected_payout"])),
            (k["expected_loss"], self.loss(k["expected_loss"])),
            (k["loss_ratio"], pct(k["loss_ratio"]))]))
        return out

    def shadow_sentences(self, prop: Proposal) -> list[str]:
        # a price that rounds to 0.00 tells the negotiator nothing
        rows = [r for r in prop.doc.get("shadow_prices", [])
                if r.get("binding") and abs(r["per_unit"]) >= 0.005]
        if not rows:
            return [self.tx("no_binding")]
        kind = "prem" if "premium per capita" in rows[0].get("objective_unit", "") else "loss"
        lang, cur = self.lang, self.currency
        return [self.tx("shadow_sentence", rule=rule(r["constraint"], lang, cur),
                        unit=unit(r["unit"], lang, cur),
                        effect=self.tx(f"sh_{kind}_{'up' if r['per_unit'] > 0 else 'down'}",
                                       v=f"{abs(r['per_unit']):,.2f}")) for r in rows]

    def shadow_units(self, r: dict) -> dict[str, str]:
        """A shadow-price row's units in the plans' money unit, for the workbook's sheet of
        plan.json's rows (which, like its rule names, stays in the optimiser's English:
        "CNY of cap" is "HKD of cap" for plans in HKD)."""
        return {k: unit(r[k], "en", self.currency) for k in ("unit", "objective_unit")
                if isinstance(r.get(k), str)}

    def status_sentence(self, prop: Proposal) -> str:
        sv = prop.doc.get("solver", {})
        return self.tx("status", status=solver_word(sv.get("status", "?"), self.lang),
                       method=solver_word(sv.get("method", "?"), self.lang),
                       plans=f"{sv.get('plans_priced', 0):,}")

    def impact_html(self) -> str:
        """Per proposal: who is paid more and who less than today, by cost band, age band
        and member group."""
        head = [self.tx("impact_by"), self.tx("impact_key"), self.tx("impact_claimants"),
                self.tx("impact_gain"), self.tx("impact_lose"), self.tx("impact_change"),
                self.tx("impact_per")]
        parts = []
        for p in self.props:
            if not p.feasible or not p.doc.get("member_impact"):
                continue
            rows = [row(self.tx(r["by"]) if r["by"] != "age_band" else self.tx("age_band"),
                        [cell(float("nan"), self.impact_key(r))]
                        + [cell(r[c], f"{r[c]:,.1f}") for c in ("claimants", "gain", "lose")]
                        + [cell(r["change"], money(r["change"])),
                           cell(r["change_per_claimant"] if r["change_per_claimant"]
                                is not None else float("nan"),
                                money(r["change_per_claimant"])
                                if r["change_per_claimant"] is not None else "–")])
                    for r in p.doc["member_impact"]]
            parts.append(f"<h3>{html.escape(self.tx(p.key))}</h3>" + table(head, rows, "kpi"))
        return "".join(parts)

    def loss(self, x: float) -> str:
        """A loss figure of a table: a surplus is written as one, never as a negative loss."""
        return money(x) if round(x) >= 0 else self.tx("surplus_word", x=money(-x))

    def result(self, loss: float) -> str:
        """An expected loss in words: a loss, a surplus, or breaking even."""
        if round(loss) == 0:
            return self.tx("break_even_word")
        return self.tx("a_loss" if loss > 0 else "a_surplus", x=money(abs(loss)))

    def change(self, delta: float, fmt=money) -> str:
        """A change with its direction word."""
        if round(delta, 2) == 0:
            return self.tx("unchanged")
        return self.tx("more" if delta > 0 else "less", x=fmt(abs(delta)))

    def against_today(self, loss: float) -> str:
        """An expected loss against today's, with its direction."""
        delta = loss - self.sq["kpis"]["expected_loss"]
        if round(delta) == 0:
            return self.tx("same_loss")
        return self.tx("saves" if delta <= 0 else "costs_more", x=money(abs(delta)))

    def verdict(self) -> list[str]:
        """Three or four plain sentences from plan.json: today's result, which proposal
        stops the loss (the lowest premium that does), what the others do, and who — if
        anyone — is paid less under the proposal that stops the loss."""
        k = self.sq["kpis"]
        out = [self.tx("v_today", p=premium(k["premium_per_capita"]),
                       result=self.result(k["expected_loss"]), year=self.year,
                       pl=pct(k["prob_loss"]))]
        ok = [p for p in self.props if p.feasible]
        stoppers = sorted((p for p in ok if p.doc["kpis"]["expected_loss"] <= 0),
                          key=lambda p: (p.doc["kpis"]["premium_per_capita"], p.key))
        stop = stoppers[0] if stoppers else None
        if stop is None:
            out.append(" ".join([self.tx("v_none"), *stopless_notes(ok)]))
        else:
            kp = stop.doc["kpis"]
            st = kp.get("settlement") or {}
            rel = kp["premium_per_capita"] / k["premium_per_capita"] - 1
            out.append(self.tx("v_stops", name=stop.key,
                               p=premium(kp["premium_per_capita"]),
                               change=self.change(rel, lambda x: f"{x:.1%}"),
                               result=self.result(kp["expected_loss"]),
                               pb=pct(st.get("prob_loss_before", kp["prob_loss"])),
                               pa=pct(st.get("prob_loss_after", kp["prob_loss"]))))
        others = [p for p in ok if p is not stop]
        if others:
            out.append(" ".join(self.tx(
                "v_other", name=p.key, p=premium(p.doc["kpis"]["premium_per_capita"]),
                result=self.result(p.doc["kpis"]["expected_loss"]),
                saving=self.against_today(p.doc["kpis"]["expected_loss"]))
                for p in others))
        who = stop or (ok[0] if ok else None)
        if who is not None:
            n, amount = paid_less(who.doc.get("member_impact", []))
            out.append(self.tx("v_nobody", name=who.key) if n < 0.5 else
                       self.tx("v_less", name=who.key, n=money(n), amount=money(amount)))
        return out

    def sentence(self, text: str) -> str:
        """A clause made a sentence of the report's language."""
        return text + "。" if self.lang == "zh" else text[:1].upper() + text[1:] + "."

    def summary(self) -> list[str]:
        k = self.sq["kpis"]
        out = [self.tx("sum_today", loss=self.result(k["expected_loss"]), year=self.year,
                       lr=pct(k["loss_ratio"]), pl=pct(k["prob_loss"]),
                       inc=money(k["premium_income"]), pay=money(k["expected_payout"]),
                       opex=money(k["operating_cost"]))]
        for p in self.props:
            if not p.feasible:
                out.append(f"{self.tx(p.key)}: "
                           + infeasible_text(p.doc, self.lang, self.currency))
                continue
            q, kp = p.doc["plan"], p.doc["kpis"]
            cap = (self.tx("none") if q["cap"] == "none"
                   else self.tx("cap_amount", v=money(q["cap"])))
            out.append(self.tx("sum_prop", name=self.tx(p.key),
                               p=premium(q["premium_per_capita"]), d=money(q["deductible"]),
                               cap=cap, loss=self.result(kp["expected_loss"]),
                               delta=self.against_today(kp["expected_loss"]),
                               er=pct(kp["effective_ratio"])))
            out += [self.sentence(today_break_text(b, self.lang, self.currency, p.key))
                    for b in p.doc.get("today_breaks") or []]
        return out

    # --- the contract

    def term_tables(self) -> list[tuple[str, list[tuple[str, list[tuple[float, str]]]]]]:
        """(name, rows) of the three-year term of today's plan and of each proposal."""
        first = next(p for p in self.props if p.feasible)
        out = [(self.tx("status_quo"), contract.term_rows(
            {"term": first.doc.get("status_quo_term", [])}, self.loss, pct))]
        out += [(self.tx(p.key), contract.term_rows(p.doc, self.loss, pct))
                for p in self.props if p.feasible]
        return [(name, [(self.tx("term_whole") if y == "term" else y, vals)
                        for y, vals in rows]) for name, rows in out if rows]

    def contract_html(self, grid) -> str:
        """Terms in words, before and after settlement, the fund's view, the term."""
        texts = []
        for p in self.props:
            if p.feasible and p.doc.get("contract"):
                words = contract.terms_in_words(p.doc["contract"], self.lang)
                if all(words not in w for w in texts):
                    texts.append(f"{self.tx(p.key)}: {words}" if texts else words)
        settled = [(self.tx(name), vals) for name, vals
                   in contract.settled_rows(self.columns(), self.loss, pct)]
        head = [self.tx("term_year"), *[self.tx(h) for h in contract.TERM_HEAD]]
        terms = "".join(f"<h3>{html.escape(name)}</h3>"
                        + table(head, [row(y, [cell(v, s) for v, s in vals])
                                       for y, vals in rows], "kpi term")
                        for name, rows in self.term_tables())
        return ("".join(f"<p>{html.escape(x)}</p>" for x in texts) + grid(settled) + terms)

    # --- charts

    def charts(self) -> dict[str, str]:
        """Each chart as inline SVG, drawn in the report's chart style."""
        with matplotlib.rc_context(chart_style()):
            return self._charts()

    def _charts(self) -> dict[str, str]:
        out = {}
        hist = self.prov.get("history", [])
        if hist:
            fig, ax = new_figure(figsize=(7, 3))
            years = [str(h["year"]) for h in hist] + [f"{self.year}*"]
            losses = [h["loss"] / 1e6 for h in hist] + [self.sq["kpis"]["expected_loss"] / 1e6]
            ax.bar(years, losses, color=["#9ab"] * len(hist) + ["#c33"])
            ax.set_ylabel(self.tx("cny_m"))
            ax.set_title(self.tx("loss"))
            out["history"] = svg(fig)
        cols = self.columns()
        fig, ax = new_figure(figsize=(7, 3))
        bands = list(cols[0][2]["payout_by_age"])
        width = 0.8 / len(cols)
        for j, (name, _, k) in enumerate(cols):
            ax.bar([i + j * width for i in range(len(bands))],
                   [k["payout_by_age"][b] / 1e6 for b in bands], width, label=name)
        ax.set_xticks(range(len(bands)), bands, rotation=45, fontsize=7)
        ax.set_ylabel(self.tx("cny_m"))
        ax.legend(fontsize=7)
        out["by_age"] = svg(fig)
        fig, ax = new_figure(figsize=(7, 3))
        plans = [(name, plan_from_dict(name, terms)) for name, terms, _ in cols]
        top = max([600_000.0] + [1.3 * q.capped_cost() for _, q in plans
                                 if np.isfinite(q.capped_cost())])
        xs = np.linspace(0.0, top, 400)
        styles = [dict(color="#222", linestyle="--", linewidth=2.4, zorder=5)] + [
            dict(linewidth=1.4, linestyle=ls) for ls in ("-", "-.", ":", "-")]
        for (name, q), style in zip(plans, styles, strict=False):
            ax.plot(xs / self.k_unit, q.payout(xs) / self.k_unit, label=name, **style)
        ax.set_xlabel(self.tx("cost_level_k"))
        ax.set_ylabel(self.tx("payout_k"))
        ax.legend(fontsize=7)
        out["member"] = svg(fig)
        front = next((p.frontier for p in self.props if p.frontier is not None
                      and len(p.frontier)), None)
        if front is not None and "expected_loss" in front:
            ok = front[front["feasible"].astype(bool)]
            fig, ax = new_figure(figsize=(6, 3))
            ax.plot(ok["effective_ratio"] * 100, ok["expected_loss"] / 1e6, marker="o",
                    color="#9ab", label=self.tx("frontier_line"))
            marks = [(self.tx("status_quo"), self.sq["kpis"])] + [
                (p.key, p.doc["kpis"]) for p in self.props if p.feasible]
            for (name, k), m in zip(marks, "s^vDP", strict=False):
                ax.plot(k["effective_ratio"] * 100, k["expected_loss"] / 1e6, m,
                        markersize=7, label=f"{name} ({premium(k['premium_per_capita'])})")
            ax.axhline(0, color="#444", linewidth=0.8)
            ax.set_xlabel(self.tx("effective_ratio_pct"))
            ax.set_ylabel(self.tx("expected_loss_m"))
            ax.set_title(self.tx("frontier_at", p=premium(self.sq["plan"]["premium_per_capita"])),
                         fontsize=8)
            ax.legend(fontsize=7)
            out["frontier"] = svg(fig)
        tables = self.term_tables()
        if tables:
            fig, ax = new_figure(figsize=(7, 3))
            width = 0.8 / len(tables)
            for j, (name, rows) in enumerate(tables):
                years = [r for r in rows if r[0] != self.tx("term_whole")]
                mid = np.array([vals[5][0] for _, vals in years]) / 1e6
                lo = np.array([vals[6][0] for _, vals in years]) / 1e6
                hi = np.array([vals[7][0] for _, vals in years]) / 1e6
                ax.bar([i + j * width for i in range(len(years))], mid, width, label=name,
                       yerr=[mid - lo, hi - mid], capsize=2)
                ax.set_xticks([i + 0.4 - width / 2 for i in range(len(years))],
                              [y for y, _ in years])
            ax.axhline(0, color="#444", linewidth=0.8)
            ax.set_ylabel(self.tx("cny_m"))
            ax.set_title(self.tx("term_loss_after") + ", 5–95 %", fontsize=8)
            ax.legend(fontsize=7)
            out["term"] = svg(fig)
        by_age = pd.DataFrame(self.prov.get("by_age", []))
        if not by_age.empty:
            fig, axes = new_figure(1, 2, figsize=(8, 3))
            for ax, col in zip(axes, ("frequency", "severity"), strict=True):
                for (kind, year), g in by_age.groupby(["kind", "year"]):
                    style = "-" if kind == "observed" else "--"
                    word = self.tx("observed" if kind == "observed" else "forecast_word")
                    ax.plot(g["age_band"], g[col], style, label=f"{year} {word}")
                ax.set_title(self.tx(col), fontsize=8)
                ax.set_xlabel(self.tx("age_band"))
            axes[0].legend(fontsize=7)
            out["forecast"] = svg(fig)
        return out

    # --- output

    def html(self) -> str:
        names = [c[0] for c in self.columns()]
        charts = self.charts()
        kpis = self.kpi_rows()  # premium, ..., expected loss (4), ..., probability (9)

        def grid(rows):
            return table(["", *names],
                         [row(label, [cell(v if v is not None else float("nan"), s)
                                      for v, s in vals]) for label, vals in rows])

        sections = [
            ("verdict", "".join(f"<p>{html.escape(s)}</p>" for s in self.verdict())
             + grid([kpis[0], kpis[4], kpis[9]])),
            ("summary", "".join(f"<p>{html.escape(s)}</p>" for s in self.summary())),
            ("sure", self.sure_html(grid)),
            ("history", table([self.tx("year"), self.tx("insured"), self.tx("insured_rate"),
                               self.tx("premium_income"), self.tx("payouts"), self.tx("loss"),
                               self.tx("loss_ratio")],
                              [row(y, [cell(v, s) for v, s in vals])
                               for y, vals in self.history_rows()], "kpi")
             + paragraphs([self.development()]) + charts.get("history", "")),
            ("kpis", grid(self.kpi_rows())),
            ("terms", grid(self.term_rows())),
            ("member", table([self.tx("cost_level"), *names],
                             [row(label, [cell(v, s) for v, s in vals])
                              for label, vals in self.member_rows()]) + charts["member"]),
            ("by_age", table([self.tx("age_band"), *names],
                             [row(label, [cell(v, s) for v, s in vals])
                              for label, vals in self.age_rows()]) + charts["by_age"]),
            ("impact", self.impact_html()),
            ("contract", self.contract_html(grid) + charts.get("term", "")),
            ("shadow", "".join(
                f"<h3>{html.escape(self.tx(p.key))}</h3>"
                f"<p>{html.escape(self.status_sentence(p))}</p><ul>"
                + "".join(f"<li>{html.escape(s)}</li>" for s in self.shadow_sentences(p))
                + "</ul>" for p in self.props if p.feasible)),
            ("frontier", charts.get("frontier", "")),
            ("forecast", charts.get("forecast", "")),
            ("backtest", self.backtest_html()),
            ("provenance", f"<p>{html.escape(self.provenance_text())}</p>"),
        ]
        body = "".join(f'<section id="{key}"><h2>{html.escape(self.tx(key))}</h2>{content}'
                       "</section>" for key, content in sections)
        title = html.escape(self.tx("title", year=self.year))
        return (f'<!DOCTYPE html><html lang="{"zh-CN" if self.lang == "zh" else "en"}"><head>'
                f'<meta charset="utf-8"><title>{title}</title><style>{CSS}</style></head>'
                f"<body><h1>{title}</h1>{body}</body></html>")

    def development(self) -> str | None:
        """How complete the latest year of data is, in words (None when complete)."""
        return sure.development_sentence(self.prov.get("development"), money, self.lang,
                                         self.currency)

    def sure_rows(self) -> list[tuple[str, list[tuple[float, str]]]]:
        """Premium income and payouts, expected and both ends, of each column."""
        return [(self.tx(key), vals) for key, vals in sure.range_rows(self.columns(), money)]

    def backtest_rows(self) -> list[tuple[str, list[tuple[float, str]]]]:
        """Each backtest measure in words, its value under each model's backtest."""
        return [(self.tx(f"m_{metric}"),
                 [(float("nan") if v is None else v, sure.formatted(v, kind)) for v in values])
                for metric, kind, values in sure.backtest_cells(self.prov.get("backtest", {}))]

    def backtest_head(self) -> list[str]:
        return [self.tx("bt_measure"), *[self.tx(f"bt_{m}") for m in sure.MODELS]]

    def sure_html(self, grid) -> str:
        """Ranges in words and figures, the backtest in a sentence, the completion of the
        latest year."""
        words = [sure.range_sentence(self.sq["kpis"], money, self.result, self.lang,
                                     self.currency),
                 sure.backtest_sentence(self.prov.get("backtest", {}), self.lang),
                 self.development()]
        rows = self.sure_rows()
        return paragraphs(words) + (grid(rows) if rows else "")

    def backtest_html(self) -> str:
        return table(self.backtest_head(),
                     [row(label, [cell(v, s) for v, s in vals])
                      for label, vals in self.backtest_rows()], "kpi")

    def provenance_text(self) -> str:
        space = self.space
        return self.tx(
            "prov_text", fp=self.prov.get("data_fingerprint", "?"),
            fr=self.prov.get("forecast_run", "?"),
            mv=", ".join(f"{name} {version}" for name, version
                         in self.prov.get("model_versions", {}).items()) or "?",
            pr=", ".join(f"{p.key}={p.doc.get('run_id', '?')}" for p in self.props),
            os=pct(space.get("costs", {}).get("opex_share", 0.0)),
            pc=pct(space.get("contract", {}).get("profit_cap_share", 0.0)),
            n=space.get("risk", {}).get("scenarios", "?"))

    def sheets(self) -> dict[str, pd.DataFrame]:
        """The report's tables as frames (numbers as numbers) for the XLSX file."""
        names = [c[0] for c in self.columns()]

        def frame(rows, first):
            return pd.DataFrame([[label, *[v for v, _ in vals]] for label, vals in rows],
                                columns=[first, *names])

        hist_cols = [self.tx(k) for k in ("insured", "insured_rate", "premium_income",
                                          "payouts", "loss", "loss_ratio")]
        history = pd.DataFrame([[y, *[v for v, _ in vals]] for y, vals in self.history_rows()],
                               columns=[self.tx("year"), *hist_cols])
        shadow = pd.DataFrame([{"proposal": self.tx(p.key), **r} | self.shadow_units(r)
                               for p in self.props if p.feasible
                               for r in p.doc.get("shadow_prices", [])])
        front = next((p.frontier for p in self.props if p.frontier is not None), pd.DataFrame())
        backtest = pd.DataFrame([[label, *[v for v, _ in vals]]
                                 for label, vals in self.backtest_rows()],
                                columns=self.backtest_head())
        dev = self.prov.get("development")
        completion = pd.DataFrame([sure.development_row(dev, self.lang, self.currency)]
                                  if dev else [])
        terms = frame(self.term_rows(), "")
        settled = frame([(self.tx(n), v) for n, v in
                         contract.settled_rows(self.columns(), self.loss, pct)],
                        self.tx("metric"))
        term = pd.DataFrame([[name, as_number(y), *[v for v, _ in vals]]
                             for name, rows in self.term_tables() for y, vals in rows],
                            columns=["", self.tx("term_year"),
                                     *[self.tx(h) for h in contract.TERM_HEAD]])
        member = frame(self.member_rows(), self.tx("cost_level"))
        member[self.tx("cost_level")] = [float(x) for x in self.sq["kpis"]["payout_at"]]
        history["_year"] = [as_number(y) for y in history[self.tx("year")]]
        history[self.tx("year")] = history.pop("_year")
        return {"Verdict": pd.DataFrame({"": self.verdict()}),
                "KPIs": frame(self.kpi_rows(), self.tx("metric")),
                "HowSure": frame(self.sure_rows(), self.tx("metric")), "Terms": terms,
                "Contract": settled, "Term": term,
                "Member": member,
                "ByAge": frame(self.age_rows(), self.tx("age_band")),
                "History": history, "Shadow": shadow, "Frontier": front,
                "Forecast": pd.DataFrame(self.prov.get("by_age", [])), "Backtest": backtest,
                **({"Completion": completion} if dev else {}),
                "Sources": pd.DataFrame({"text": [self.provenance_text()]})}


CSS = """
@page { size: A4; margin: 15mm; }
body { font-family: "Noto Sans CJK SC", "Noto Sans", "DejaVu Sans", sans-serif; font-size: 10pt;
       color: #222; max-width: 180mm; margin: auto; }
h1 { font-size: 16pt; } h2 { font-size: 12pt; border-bottom: 1px solid #999; margin-top: 1.2em; }
h3 { font-size: 10pt; }
table { border-collapse: collapse; margin: 0.5em 0; width: 100%; font-size: 8.5pt; }
th, td { border: 1px solid #ccc; padding: 2px 4px; text-align: right; }
thead th { background: #eee; } tbody th { text-align: left; font-weight: normal; }
thead th { min-width: 3.2em; vertical-align: bottom; }
table.term { font-size: 7pt; } table.term th, table.term td { padding: 1px 2px; }
table, svg, p { page-break-inside: avoid; } h2, h3 { page-break-after: avoid; }
section#verdict { page-break-after: always; }
svg { max-width: 100%; height: auto; }
"""


def write_report(plan_dirs: list[Path], out: Path, lang: str = "en") -> Path:
    """Write report.html and report.xlsx of the plan folders into `out`."""
    return publish_report(read_plans(plan_dirs), out, lang)


def publish_report(proposals: list[Proposal], out: Path, lang: str = "en") -> Path:
    """Write report.html and report.xlsx into `out`, published whole with a manifest naming
    the plans (their folders' content hashes and runs) it was made from."""
    report = Report(proposals, lang)
    inputs = {"lang": lang, "plans": {p.key: {"content_hash": p.content_hash,
                                              "plan_run": p.doc.get("run_id")}
                                      for p in report.props}}
    with publish(Path(out), "report", inputs) as tmp:
        (tmp / "report.html").write_text(report.html(), encoding="utf-8")
        # Chromium prints the PDF in its own processes while the workbook is written
        with (print_pdf(tmp / "report.html", tmp / "report.pdf"),
              pd.ExcelWriter(tmp / "report.xlsx", engine="openpyxl") as writer):
            for name, frame in report.sheets().items():
                frame.to_excel(writer, sheet_name=name, index=False)
            text_not_formulas(writer.book)
            number_formats(writer.book)
        stop_here("report:write")
    return Path(out)


def chromium() -> str | None:
    """Headless Chromium's executable, if the machine has one."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome")) if p), None)


PDF_TIMEOUT = 120.0  # seconds Chromium is given to print the report


@contextlib.contextmanager
def print_pdf(page: Path, pdf: Path) -> Iterator[None]:
    """Print the HTML report to A4 PDF beside it with headless Chromium (its print styles
    place the page breaks), started on entry and awaited on exit, so that the caller works
    meanwhile; without Chromium, or if it fails, there is no PDF and the HTML prints the
    same from any browser.

    Chromium runs in a process group of its own: when the caller fails or is interrupted,
    or Chromium does not finish in PDF_TIMEOUT, the whole group (its renderer and helper
    processes too) is killed. A PDF is kept only when Chromium exited cleanly and the file
    is whole (from `%PDF-` to `%%EOF`): a killed or failed print leaves no half PDF."""
    exe = chromium()
    if exe is None:
        yield
        return
    # a killed Chromium's helpers may still be writing into the profile as it is removed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        try:
            proc = subprocess.Popen(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                 f"--print-to-pdf={pdf}", page.resolve().as_uri()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        except OSError:
            proc = None
        printed = False
        try:
            yield  # the caller's work; on its error no PDF is waited for
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    printed = proc.wait(timeout=PDF_TIMEOUT) == 0
        finally:
            if proc is not None and proc.poll() is None:  # failed, interrupted, timed out
                _kill_group(proc)
            if not (printed and _whole_pdf(pdf)):
                pdf.unlink(missing_ok=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a process started in a session of its own, with every process of its group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _whole_pdf(path: Path) -> bool:
    """Whether `path` is a PDF written to its end (`%PDF-` header, `%%EOF` trailer)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(5)
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - 1024, 0))
            tail = fh.read()
    except OSError:
        return False
    return head == b"%PDF-" and b"%%EOF" in tail


def paragraphs(texts: list[str | None]) -> str:
    """Each text that is there as a paragraph."""
    return "".join(f"<p>{html.escape(x)}</p>" for x in texts if x)


def as_number(label: str) -> float | str:
    """A row label that is a number (a year, a cost level) as that number."""
    try:
        return int(label) if label.isdigit() else float(label.replace(",", ""))
    except ValueError:
        return label


def number_formats(book) -> None:
    """Numbers shown as the report shows them: thousands separated, small ones with two
    decimals, years and whole counts without."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows(min_row=2):
            for xcell in row:
                v = xcell.value
                if isinstance(v, bool) or not isinstance(v, int | float):
                    continue
                if isinstance(v, int) and 1900 <= v <= 2200:
                    continue
                xcell.number_format = "#,##0" if abs(v) >= 100 else "0.00##"


def text_not_formulas(book) -> None:
    """Every cell openpyxl took for a formula (text starting with '=', such as a name from
    a plan file) is written as the text it is: the report holds no formulas."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for xcell in row:
                if xcell.data_type == "f":
                    xcell.data_type = "s"
