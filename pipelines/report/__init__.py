"""The negotiation report: HTML and XLSX from plan folders, its labels in both languages
and its charts."""

from forecasting._lazy import exports

_NAMES = {
    "read_plans": "pipelines.report.document",
    "Report": "pipelines.report.document",
    "write_report": "pipelines.report.document",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
