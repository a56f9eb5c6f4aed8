"""Pipelines layer: the workflows behind the `ciplan` commands, the report and MLflow
tracking. Imports optimization and forecasting."""

from forecasting._lazy import exports

_NAMES = {
    "app": "pipelines.cli",
    "load_forecast": "pipelines.workflows.propose",
    "main": "pipelines.cli",
    "PROPOSALS": "pipelines.conventions",
    "run_all": "pipelines.workflows.run_all",
    "run_forecast": "pipelines.workflows.forecast_year",
    "run_optimize": "pipelines.workflows.propose",
    "tracking_uri": "pipelines.tracking",
    "train": "pipelines.workflows.train",
    "write_report": "pipelines.report.document",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
