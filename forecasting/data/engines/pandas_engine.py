"""The pandas engine: any file (CSV or Parquet), held in memory, checked column by column.

It is the engine that names offences: file, column, first rows, expected and got. The
SQL engines count offences and hand over to it to say where.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from forecasting.data.cells import Cells, aggregate, annual_costs, claimant_columns
from forecasting.data.contract import validate_claims, validate_members
from forecasting.data.io import read_table, where
from forecasting.data.options import DataOptions, Source
from forecasting.data.summary import SeveritySummary
from forecasting.errors import InputError


def cells_from_files(source: Source, options: DataOptions) -> Cells:
    """Read, validate and aggregate members and claims in memory (InputError naming the
    file, column and rows at the first offence)."""
    members_path, claims_path = source.members, source.claims
    encoding, max_cost = options.encoding, options.max_cost
    members = validate_members(members_path, read_table(members_path, encoding=encoding))
    claims = validate_claims(claims_path, read_table(
        claims_path, ["member_id", "year", "eligible_cost", "paid"], encoding), max_cost)
    _check_years(source, members_path, members["year"].to_numpy())
    _check_years(source, claims_path, claims["year"].to_numpy())
    annual = annual_costs(members, claims, members_path, claims_path, max_cost)
    reported_above = options.reported_above
    if reported_above > 0:
        low = np.flatnonzero((annual > 0) & (annual <= reported_above))
        if low.size:
            raise InputError(
                f"{claims_path}: column 'eligible_cost': expected annual totals > "
                f"reported_above {reported_above:g}; got {annual[low[0]]:g} for the "
                f"member-years at {where(members_path, low)}"
            )
    cells = aggregate(members, annual, source.spec, reported_above)
    return summarised(cells) if options.severity_summary else cells


def summarised(cells: Cells) -> Cells:
    """Cells whose claimants are rebuilt from their log-bucket summary, as the SQL engines
    send them with severity_summary: every engine then gives the models the same rows."""
    keys = ["year", *cells.spec.columns]
    found = SeveritySummary.from_claimants(cells.claimants, keys)
    claimants = found.claimants(cells.spec.band_width)[claimant_columns(cells.spec)]
    return replace(cells, claimants=claimants)


def _check_years(source: Source, path: Path, years: np.ndarray) -> None:
    unknown = sorted(set(np.unique(years).tolist()) - set(source.years_with_plan))
    if unknown:
        rows = np.flatnonzero(np.isin(years, unknown))
        raise InputError(
            f"{where(path, rows, 'column ' + repr('year'))}: expected a year with a plan in "
            f"{source.scheme} ({', '.join(map(str, sorted(source.years_with_plan)))}); "
            f"got {unknown[0]}"
        )


class PandasEngine:
    """Any file, in memory; the engine that names offending rows."""

    name = "pandas"
    failures: tuple[type[BaseException], ...] = ()

    def cells(self, source: Source, options: DataOptions) -> Cells:
        return cells_from_files(source, options)


ENGINE = PandasEngine()
