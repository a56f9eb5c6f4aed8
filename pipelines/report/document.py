"""`ciplan report`: the negotiation report — one self-contained HTML file (inline SVG charts,
printable on A4) and the same tables in XLSX — from the plan folders `ciplan optimize`
wrote. Every number comes from plan.json, i.e. from the exact evaluator."""

from __future__ import annotations

import functools
import html
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager

from forecasting.data.publish import publish, read_manifest
from forecasting.errors import InputError, UserError
from forecasting.failpoints import stop_here
from forecasting.scheme.in_force import plan_from_dict
from pipelines.conventions import PLAN_FILE, PROPOSALS, check_lang, proposal_of
from pipelines.report.labels import rule, t, unit
from pipelines.report.plots import new_figure

# the KPIs of a plan the report reads (plan.json "kpis" and "status_quo"."kpis")
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
    return sorted(out, key=lambda p: p.key)


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
    if "infeasible" in doc:
        return doc
    for where, part in (("", doc), ("status_quo.", doc.get("status_quo"))):
        if not isinstance(part, dict) or not isinstance(part.get("kpis"), dict):
            raise InputError(f"{path}: not a ciplan plan (no table {where}kpis)")
        plan_from_dict(f"{path}: {where}plan", part.get("plan") or {})
        missing = [k for k in REPORT_KPIS if k not in part["kpis"]]
        if missing:
            raise InputError(f"{path}: {where}kpis lacks {', '.join(missing)}")
    return doc


def _frontier(path: Path) -> pd.DataFrame | None:
    """frontier.csv of a plan folder, None when absent or empty."""
    if not path.exists() or path.stat().st_size <= 1:
        return None
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: not a readable frontier table ({exc})") from None


# ---------------------------------------------------------------- formatting


def money(x: float) -> str:
    return f"{x:,.0f}"


def pct(x: float) -> str:
    return f"{x:.1%}"


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
    browser's fonts draw CJK), and a CJK font measures Chinese labels if the machine has
    one. Applied per chart, never to the process."""
    cjk = sorted({f.name for f in font_manager.fontManager.ttflist
                  if "CJK" in f.name or "WenQuanYi" in f.name})
    return {"svg.fonttype": "none", "font.family": [*cjk[:1], "DejaVu Sans"]}


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

    def tx(self, key: str, **kw) -> str:
        return t(key, self.lang, **kw)

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
                                                  f"{k['premium_per_capita']:.2f}")),
                ("premium_income", lambda k: (k["premium_income"], money(k["premium_income"]))),
                ("expected_payout", lambda k: (k["expected_payout"],
                                               money(k["expected_payout"]))),
                ("operating_cost", lambda k: (k["operating_cost"], money(k["operating_cost"]))),
                ("expected_loss", lambda k: (k["expected_loss"], money(k["expected_loss"]))),
                ("loss_range", lambda k: (k["loss_p05"], f"{money(k['loss_p05'])} – "
                                                         f"{money(k['loss_p95'])}")),
                ("loss_ratio", lambda k: (k["loss_ratio"], pct(k["loss_ratio"]))),
                ("effective_ratio", lambda k: (k["effective_ratio"], pct(k["effective_ratio"]))),
                ("prob_loss", lambda k: (k["prob_loss"], pct(k["prob_loss"]))),
                ("cvar95_loss", lambda k: (k["cvar95_loss"], money(k["cvar95_loss"])))]
        return [(self.tx(key), [f(k) for _, _, k in cols]) for key, f in spec]

    def term_rows(self) -> list[tuple[str, list[tuple[float | None, str]]]]:
        def bands(p):
            lows = [p["deductible"], *p["band_edges"]]
            highs = [*p["band_edges"], None]
            return "; ".join(f"{lo / 1000:g}k–{'' if hi is None else f'{hi / 1000:g}k'} "
                             f"{r:.0%}" for lo, hi, r in zip(lows, highs, p["ratios"],
                                                               strict=True))

        def cap(c):
            return (None, self.tx("none")) if c == "none" else (c, money(c))

        def special(p):
            s = p["special"]
            cap_text = self.tx("none") if s["cap"] == "none" else money(s["cap"])
            return (None, self.tx("special_terms", f=s["deductible_factor"],
                                  inc=s["ratio_increment"] * 100, cap=cap_text))

        cols = self.columns()
        return [(self.tx("premium_per_capita"), [(p["premium_per_capita"],
                                                  f"{p['premium_per_capita']:.2f}")
                                                 for _, p, _ in cols]),
                (self.tx("deductible"), [(p["deductible"], money(p["deductible"]))
                                         for _, p, _ in cols]),
                (self.tx("bands"), [(None, bands(p)) for _, p, _ in cols]),
                (self.tx("cap"), [cap(p["cap"]) for _, p, _ in cols]),
                (self.tx("special"), [special(p) for _, p, _ in cols])]

    def member_rows(self):
        cols = self.columns()
        return [(money(float(x)), [(k["payout_at"][x], money(k["payout_at"][x]))
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
                                 (h["loss"], money(h["loss"])),
                                 (h["loss_ratio"], pct(h["loss_ratio"]))]) for h in hist]
        k = self.sq["kpis"]
        out.append((f"{self.year} ({self.tx('forecast_word')})", [
            (k["insured"], money(k["insured"])), (float("nan"), "–"),
            (k["premium_income"], money(k["premium_income"])),
            (k["expected_payout"], money(k["expected_payout"])),
            (k["expected_loss"], money(k["expected_loss"])),
            (k["loss_ratio"], pct(k["loss_ratio"]))]))
        return out

    def shadow_sentences(self, prop: Proposal) -> list[str]:
        rows = [r for r in prop.doc.get("shadow_prices", []) if r.get("binding")]
        if not rows:
            return [self.tx("no_binding")]
        per_capita = "premium per capita" in rows[0].get("objective_unit", "")
        objective = ("人均筹资" if self.lang == "zh" else "premium per capita") \
            if per_capita else ("预期亏损" if self.lang == "zh" else "expected loss")
        return [self.tx("shadow_sentence", rule=rule(r["constraint"], self.lang),
                        unit=unit(r["unit"], self.lang), objective=objective,
                        direction=self.tx("raises" if r["per_unit"] > 0 else "lowers"),
                        value=f"{abs(r['per_unit']):,.2f}") for r in rows]

    def status_sentence(self, prop: Proposal) -> str:
        sv = prop.doc.get("solver", {})
        return self.tx("status", status=sv.get("status", "?"), method=sv.get("method", "?"),
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
                        [cell(float("nan"), str(r["key"]))]
                        + [cell(r[c], f"{r[c]:,.1f}") for c in ("claimants", "gain", "lose")]
                        + [cell(r["change"], money(r["change"])),
                           cell(r["change_per_claimant"] if r["change_per_claimant"]
                                is not None else float("nan"),
                                money(r["change_per_claimant"])
                                if r["change_per_claimant"] is not None else "–")])
                    for r in p.doc["member_impact"]]
            parts.append(f"<h3>{html.escape(self.tx(p.key))}</h3>" + table(head, rows, "kpi"))
        return "".join(parts)

    def summary(self) -> list[str]:
        k = self.sq["kpis"]
        out = [self.tx("sum_today", loss=money(k["expected_loss"]), year=self.year,
                       lr=pct(k["loss_ratio"]), pl=pct(k["prob_loss"]),
                       inc=money(k["premium_income"]), pay=money(k["expected_payout"]),
                       opex=money(k["operating_cost"]))]
        for p in self.props:
            if not p.feasible:
                out.append(f"{self.tx(p.key)}: " + self.tx("infeasible", why=p.doc["infeasible"]))
                continue
            q, kp = p.doc["plan"], p.doc["kpis"]
            cap = self.tx("none") if q["cap"] == "none" else money(q["cap"])
            out.append(self.tx("sum_prop", name=self.tx(p.key),
                               p=f"{q['premium_per_capita']:.2f}", d=money(q["deductible"]),
                               cap=cap, loss=money(kp["expected_loss"]),
                               delta=money(kp["expected_loss"] - k["expected_loss"]),
                               er=pct(kp["effective_ratio"])))
        return out

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
            ax.set_ylabel("CNY M")
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
        ax.set_ylabel("CNY M")
        ax.legend(fontsize=7)
        out["by_age"] = svg(fig)
        fig, ax = new_figure(figsize=(7, 3))
        plans = [(name, plan_from_dict(name, terms)) for name, terms, _ in cols]
        top = max([600_000.0] + [1.3 * q.capped_cost() for _, q in plans
                                 if np.isfinite(q.capped_cost())])
        xs = np.linspace(0.0, top, 400)
        styles = [dict(color="#222", linestyle="--", linewidth=2.4)] + [
            dict(linewidth=1.4, linestyle=ls) for ls in ("-", "-.", ":", "-")]
        for (name, q), style in zip(plans, styles, strict=False):
            ax.plot(xs / 1000, q.payout(xs) / 1000, label=name, **style)
        ax.set_xlabel(self.tx("cost_level") + " /1000")
        ax.set_ylabel("CNY k")
        ax.legend(fontsize=7)
        out["member"] = svg(fig)
        front = next((p.frontier for p in self.props if p.frontier is not None
                      and len(p.frontier)), None)
        if front is not None and "expected_loss" in front:
            ok = front[front["feasible"].astype(bool)]
            fig, ax = new_figure(figsize=(6, 3))
            ax.plot(ok["effective_ratio"] * 100, ok["expected_loss"] / 1e6, marker="o")
            ax.set_xlabel(self.tx("effective_ratio") + " (%)")
            ax.set_ylabel(self.tx("expected_loss") + " (M)")
            out["frontier"] = svg(fig)
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
            axes[0].legend(fontsize=6)
            out["forecast"] = svg(fig)
        return out

    # --- output

    def html(self) -> str:
        names = [c[0] for c in self.columns()]
        charts = self.charts()

        def grid(rows):
            return table(["", *names],
                         [row(label, [cell(v if v is not None else float("nan"), s)
                                      for v, s in vals]) for label, vals in rows])

        sections = [
            ("summary", "".join(f"<p>{html.escape(s)}</p>" for s in self.summary())),
            ("history", table([self.tx("year"), self.tx("insured"), self.tx("insured_rate"),
                               self.tx("premium_income"), self.tx("payouts"), self.tx("loss"),
                               self.tx("loss_ratio")],
                              [row(y, [cell(v, s) for v, s in vals])
                               for y, vals in self.history_rows()], "kpi")
             + charts.get("history", "")),
            ("kpis", grid(self.kpi_rows())),
            ("terms", grid(self.term_rows())),
            ("member", table([self.tx("cost_level"), *names],
                             [row(label, [cell(v, s) for v, s in vals])
                              for label, vals in self.member_rows()]) + charts["member"]),
            ("by_age", table([self.tx("age_band"), *names],
                             [row(label, [cell(v, s) for v, s in vals])
                              for label, vals in self.age_rows()]) + charts["by_age"]),
            ("impact", self.impact_html()),
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

    def backtest_html(self) -> str:
        bt = self.prov.get("backtest", {})
        rows = [row(f"{model}: {metric}", [cell(v, f"{v:.4g}")])
                for model, metrics in bt.items() for metric, v in sorted(metrics.items())]
        return table([self.tx("metric"), self.tx("value")], rows)

    def provenance_text(self) -> str:
        space = self.space
        return self.tx(
            "prov_text", fp=self.prov.get("data_fingerprint", "?"),
            fr=self.prov.get("forecast_run", "?"), mv=self.prov.get("model_versions", {}),
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
        shadow = pd.DataFrame([{"proposal": self.tx(p.key), **r} for p in self.props
                               if p.feasible for r in p.doc.get("shadow_prices", [])])
        front = next((p.frontier for p in self.props if p.frontier is not None), pd.DataFrame())
        backtest = pd.DataFrame([{"model": m, "metric": k, "value": v}
                                 for m, ms in self.prov.get("backtest", {}).items()
                                 for k, v in ms.items()])
        terms = frame(self.term_rows(), "")
        return {"KPIs": frame(self.kpi_rows(), self.tx("metric")), "Terms": terms,
                "Member": frame(self.member_rows(), self.tx("cost_level")),
                "ByAge": frame(self.age_rows(), self.tx("age_band")),
                "History": history, "Shadow": shadow, "Frontier": front,
                "Forecast": pd.DataFrame(self.prov.get("by_age", [])), "Backtest": backtest,
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
section { page-break-inside: avoid; }
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
        with pd.ExcelWriter(tmp / "report.xlsx", engine="openpyxl") as writer:
            for name, frame in report.sheets().items():
                frame.to_excel(writer, sheet_name=name, index=False)
            text_not_formulas(writer.book)
        stop_here("report:write")
    return Path(out)


def text_not_formulas(book) -> None:
    """Every cell openpyxl took for a formula (text starting with '=', such as a name from
    a plan file) is written as the text it is: the report holds no formulas."""
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for xcell in row:
                if xcell.data_type == "f":
                    xcell.data_type = "s"
