"""Engines that turn members and claims into cells: one protocol, a registry by name.

Each engine is a module holding `ENGINE`, an object with `name`, `failures` (the
exceptions its library raises) and `cells(source, options)`. The pandas engine reads any
file and names offending rows; the SQL engines (DuckDB, Spark) run the shared SQL of
`forecasting.data.engines.sql` and raise `NeedsDetail` when an offence is counted, so the
pandas engine can say where. Adding an engine touches `ENGINES` and its own module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from forecasting.errors import EngineError

if TYPE_CHECKING:
    from forecasting.data.cells import Cells
    from forecasting.data.options import DataOptions, Source

__all__ = ["AUTO", "ENGINES", "Engine", "NeedsDetail", "Unsupported", "engine_names", "get_engine"]

# name -> module holding ENGINE (imported only when used: Spark and DuckDB are heavy)
ENGINES = {
    "pandas": "forecasting.data.engines.pandas_engine",
    "duckdb": "forecasting.data.engines.duckdb_engine",
    "spark": "forecasting.data.engines.spark_engine",
}
AUTO = "auto"


class NeedsDetail(Exception):
    """An SQL engine counted an offence: the pandas engine will say exactly where."""


class Unsupported(Exception):
    """The engine cannot read these data (e.g. CSV, or a column of another type)."""


class Engine(Protocol):
    name: str
    failures: tuple[type[BaseException], ...]

    def cells(self, source: Source, options: DataOptions) -> Cells:
        """Validated cells of the source; NeedsDetail or Unsupported when it cannot."""
        ...


def engine_names() -> tuple[str, ...]:
    """What --engine accepts: "auto" and every registered engine."""
    return (AUTO, *ENGINES)


def get_engine(name: str) -> Engine:
    """The engine registered under `name`."""
    if name not in ENGINES:
        raise EngineError(f"engine must be one of {', '.join(engine_names())}; got {name!r}")
    return importlib.import_module(ENGINES[name]).ENGINE
