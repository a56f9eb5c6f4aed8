"""Calling one engine directly, as load_data would (tests of the engines themselves)."""

from __future__ import annotations

from pathlib import Path

from forecasting.data.cells import Cells
from forecasting.data.cohorts import CohortSpec
from forecasting.data.engines import get_engine
from forecasting.data.options import DataOptions, Source


def engine_cells(engine: str, members: Path, claims: Path, spec: CohortSpec,
                 reported_above: float, **options) -> Cells:
    """Cells of `engine` on these files; NeedsDetail and Unsupported propagate."""
    source = Source(Path(members), Path(claims), spec)
    return get_engine(engine).cells(
        source, DataOptions(reported_above=reported_above, spec=spec, **options))
