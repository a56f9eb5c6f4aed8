"""Forecasting layer: data in, cells, the plan and scheme in force, claim models, the
Forecast of next year. Imports nothing from optimization or pipelines."""

from forecasting._lazy import exports

_NAMES = {
    "backtest": "forecasting.models.backtesting",
    "BlendedSeverity": "forecasting.models.severity",
    "Cells": "forecasting.data.cells",
    "CiplanError": "forecasting.errors",
    "City": "forecasting.simulate",
    "ClaimsModel": "forecasting.models.claims",
    "CohortSpec": "forecasting.data.cohorts",
    "DataOptions": "forecasting.data.options",
    "Dataset": "forecasting.data.dataset",
    "engine_names": "forecasting.data.engines",
    "EngineError": "forecasting.errors",
    "fit_spliced": "forecasting.models.spliced",
    "Forecast": "forecasting.forecast",
    "GammaSeverityGLM": "forecasting.models.severity",
    "GBMFrequency": "forecasting.models.frequency",
    "history": "forecasting.scheme.accounts",
    "InputError": "forecasting.errors",
    "load_data": "forecasting.data.dataset",
    "load_scheme": "forecasting.scheme.in_force",
    "Market": "forecasting.scheme.in_force",
    "Plan": "forecasting.scheme.plan",
    "PoissonFrequencyGLM": "forecasting.models.frequency",
    "ScenarioSet": "forecasting.forecast",
    "Scheme": "forecasting.scheme.in_force",
    "simulate_city": "forecasting.simulate",
    "SpecialRules": "forecasting.scheme.plan",
    "SplicedSeverity": "forecasting.models.spliced",
    "SplicedSeverityModel": "forecasting.models.severity",
    "UserError": "forecasting.errors",
    "write_data_dir": "forecasting.data.dataset",
    "year_result": "forecasting.scheme.accounts",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
