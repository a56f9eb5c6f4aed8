"""The pandas engine: any file (CSV or Parquet), held in memory, checked column by column.

It is the engine that names offences: file, column, first rows, expected and got. The
SQL engines count offences and hand over to it to say where.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from forecasting.data.cells import Cells, aggregate, annual_costs, claimant_columns, is_reported
from forecasting.data.contract import validate_claims, validate_members
from forecasting.data.io import read_table, where
from forecasting.data.lags import lag_records, years_under_way
from forecasting.data.options import DataOptions, Source
from forecasting.data.summary import SeveritySummary
from forecasting.errors import InputError


def cells_from_files(source: Source, options: DataOptions) -> Cells:
    """Read, validate and aggregate members and claims in memory (InputError naming the
    file, column and rows at the first offence)."""
    members_path, claims_path = source.members, source.claims
    encoding, max_cost = options.encoding, options.max_cost
    members = validate_members(members_path, read_table(members_path, encoding=encoding),
                               source.spec.keys)
    claims = validate_claims(claims_path, read_table(
        claims_path, ["member_id", "year", "service_date", "eligible_cost", "paid",
                      "settlement_date"], encoding), max_cost, as_of=options.as_of)
    if options.as_of is not None:  # the data as known then: years ended by that date
        members = members[~years_under_way(members["year"], options.as_of)]
        claims = claims[~years_under_way(claims["year"], options.as_of)]
        members, claims = members.reset_index(drop=True), claims.reset_index(drop=True)
    annual, counts = annual_costs(members, claims, members_path, claims_path, max_cost,
                                  counts=True)
    if options.as_of is None:  # a year not all settled may hold totals below the threshold
        _check_threshold(options, claims_path, members_path, annual)
    cells = aggregate(members, annual, source.spec, options.reported_above,
                      options.threshold_rule, counts)
    if options.as_of is not None:
        keys = list(source.spec.keys)
        keyed = claims.merge(members[["member_id", "year", *keys]], on=["member_id", "year"],
                             how="left", validate="many_to_one")
        cells = replace(cells, as_of=options.as_of, lags=lag_records(
            keyed, options.reported_above, options.threshold_rule, tuple(keys)))
    return summarised(cells) if options.severity_summary else cells


def _check_threshold(options: DataOptions, claims_path: Path, members_path: Path,
                     annual: np.ndarray) -> None:
    """Data reported only from a threshold on hold no annual total below it (nor at it,
    when the rule is "above")."""
    threshold = options.reported_above
    if threshold <= 0:
        return
    low = np.flatnonzero((annual > 0) & ~is_reported(annual, threshold, options.threshold_rule))
    if low.size:
        sign = ">=" if options.threshold_rule == "at-or-above" else ">"
        hint = ("" if options.threshold_rule == "at-or-above" else
                "; if the data hold costs at or above the threshold, use the rule "
                "at-or-above")
        raise InputError(
            f"{claims_path}: column 'eligible_cost': expected annual totals {sign} "
            f"reported_above {threshold:g}; got {annual[low[0]]:g} for the "
            f"member-years at {where(members_path, low)}{hint}"
        )


def summarised(cells: Cells) -> Cells:
    """Cells whose claimants are rebuilt from their log-bucket summary, as the SQL engines
    send them with severity_summary: every engine then gives the models the same rows."""
    keys = ["year", *cells.spec.columns]
    found = SeveritySummary.from_claimants(cells.claimants, keys)
    claimants = found.claimants(cells.spec.band_width)[claimant_columns(cells.spec)]
    return replace(cells, claimants=claimants)


class PandasEngine:
    """Any file, in memory; the engine that names offending rows."""

    name = "pandas"
    failures: tuple[type[BaseException], ...] = ()

    def cells(self, source: Source, options: DataOptions) -> Cells:
        return cells_from_files(source, options)


ENGINE = PandasEngine()
