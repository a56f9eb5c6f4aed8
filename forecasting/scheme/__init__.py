"""The plan and the scheme in force, shared by both layers above the data: payouts of a
plan, the plan and market of each year, and the accounts of a year under a plan."""

from forecasting._lazy import exports

_NAMES = {
    "history": "forecasting.scheme.accounts",
    "load_scheme": "forecasting.scheme.in_force",
    "Market": "forecasting.scheme.in_force",
    "member_payouts": "forecasting.scheme.plan",
    "payouts_by_age": "forecasting.scheme.accounts",
    "Plan": "forecasting.scheme.plan",
    "plan_from_dict": "forecasting.scheme.in_force",
    "plan_to_dict": "forecasting.scheme.in_force",
    "Scheme": "forecasting.scheme.in_force",
    "scheme_to_toml": "forecasting.scheme.in_force",
    "SpecialRules": "forecasting.scheme.plan",
    "year_result": "forecasting.scheme.accounts",
    "YearResult": "forecasting.scheme.accounts",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
