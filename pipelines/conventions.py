"""Names the workflows, the report and the CLI share, stated once: the plan file, the
proposals put on the table, the report languages, the money unit of files that name none."""

from __future__ import annotations

import os
from pathlib import Path

from forecasting.config import DEFAULT_CURRENCY
from forecasting.errors import UserError

__all__ = ["DEFAULT_CURRENCY", "LANGS", "MODEL_FORMAT", "PLAN_FILE", "PROPOSALS",
           "SUMMARY_FILE", "cache_root", "check_lang", "currency_of", "proposal_of"]

PLAN_FILE = "plan.json"
# A forecast folder's summary (its figures and the models' warnings). Here, not in
# forecast_year (which needs scikit-learn), because a re-run reads it to say the warnings
# again and imports nothing of the models (0.6 s).
SUMMARY_FILE = "summary.json"
# The proposals put on the table against today's plan: key -> objective. A: least
# expected loss at today's premium, nobody worse off; B: lowest premium that breaks even
# with today's benefits; C: lowest premium with today's benefits that meets the insurer's
# risk appetite. D, the loss-benefit frontier, travels with A (frontier.csv).
PROPOSALS = {"A": "min-loss", "B": "break-even", "C": "risk"}
LANGS = ("en", "zh")
# DEFAULT_CURRENCY (forecasting.config): the money unit of a forecast or plan that names
# none (made before `[data] currency` was recorded in them), the data contract's default.
# How models are stored (served with their levels checked); part of the train config, so
# a store of another format trains again. Here, not in model_files (which needs
# scikit-learn), because looking for a train run to reuse needs the name only.
MODEL_FORMAT = "skops+sha256+levels"


def cache_root() -> Path:
    """Where ciplan keeps what it can always make again (the built-in data, an empty
    MLflow store): $CIPLAN_CACHE, else ~/.cache/ciplan."""
    return Path(os.environ.get("CIPLAN_CACHE", Path.home() / ".cache" / "ciplan"))


def currency_of(*parts: dict) -> str:
    """The money unit the first of `parts` that names one names ("currency" of plan.json,
    of a forecast's provenance), DEFAULT_CURRENCY when none does."""
    return next((p["currency"] for p in parts if p.get("currency")), DEFAULT_CURRENCY)


def proposal_of(objective: str | None) -> str:
    """The proposal key of an objective (A for anything not among the proposals)."""
    return next((k for k, o in PROPOSALS.items() if o == objective), "A")


def check_lang(lang: str) -> str:
    """`lang` if the report is written in it, else a user error."""
    if lang not in LANGS:
        raise UserError(f"--lang expected {' or '.join(LANGS)}; got {lang!r}")
    return lang
