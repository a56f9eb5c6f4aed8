"""Claim models fitted on cells (scikit-learn estimators), the enrolment projection, the
ClaimsModel that makes a Forecast, the rolling-origin backtest, and the claims development
that completes years not all settled."""

from forecasting._lazy import exports

_NAMES = {
    "backtest": "forecasting.models.backtesting",
    "BlendedSeverity": "forecasting.models.severity",
    "ClaimsModel": "forecasting.models.claims",
    "complete": "forecasting.models.completion",
    "Completion": "forecasting.models.completion",
    "developed": "forecasting.models.completion",
    "fit_spliced": "forecasting.models.spliced",
    "GammaSeverityGLM": "forecasting.models.severity",
    "GBMFrequency": "forecasting.models.frequency",
    "METRICS": "forecasting.models.backtesting",
    "PoissonFrequencyGLM": "forecasting.models.frequency",
    "project_enrollment": "forecasting.models.enrollment",
    "SplicedSeverity": "forecasting.models.spliced",
    "SplicedSeverityModel": "forecasting.models.severity",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
