"""The data step: members and claims read, checked against the contract and aggregated to
cells by an engine (pandas, DuckDB, Spark)."""

from forecasting._lazy import exports

_NAMES = {
    "Cells": "forecasting.data.cells",
    "CohortSpec": "forecasting.data.cohorts",
    "DataOptions": "forecasting.data.options",
    "Dataset": "forecasting.data.dataset",
    "fingerprint": "forecasting.data.dataset",
    "load_data": "forecasting.data.dataset",
    "SeveritySummary": "forecasting.data.summary",
    "Source": "forecasting.data.options",
    "write_data_dir": "forecasting.data.dataset",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
