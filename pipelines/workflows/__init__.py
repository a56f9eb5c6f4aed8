"""The workflows of the commands: train, forecast a year, propose plans, the whole run, and
the built-in simulated data."""

from forecasting._lazy import exports

_NAMES = {
    "builtin_data": "pipelines.workflows.builtin",
    "ForecastResult": "pipelines.workflows.forecast_year",
    "load_forecast": "pipelines.workflows.propose",
    "OptimizeResult": "pipelines.workflows.propose",
    "run_all": "pipelines.workflows.run_all",
    "run_forecast": "pipelines.workflows.forecast_year",
    "run_optimize": "pipelines.workflows.propose",
    "RunSummary": "pipelines.workflows.run_all",
    "TrainResult": "pipelines.workflows.train",
    "write_city": "pipelines.workflows.builtin",
    "write_regions": "pipelines.workflows.regions",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
