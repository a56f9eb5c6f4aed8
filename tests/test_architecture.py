"""The layout as the architecture: layers import only downward, and each package's public
API is the curated list below (a change to it is a decision, made here on purpose)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a layer may import itself and the layers after it in this list, never one before it
LAYERS = ("pipelines", "optimization", "forecasting")
# inside forecasting: the data step sits below the models and the forecast
BELOW = {"forecasting.data": ("forecasting.models", "forecasting.forecast",
                              "forecasting.simulate")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _modules(package: str) -> list[tuple[str, set[str]]]:
    return [(".".join(p.relative_to(ROOT).with_suffix("").parts), _imports(p))
            for p in sorted((ROOT / package.replace(".", "/")).rglob("*.py"))]


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_downward(layer):
    higher = LAYERS[:LAYERS.index(layer)]
    upward = [(mod, imp) for mod, imports in _modules(layer) for imp in imports
              if imp.split(".")[0] in higher]
    assert not upward, f"{layer} imports a higher layer: {upward}"


@pytest.mark.parametrize("package", sorted(BELOW))
def test_data_step_does_not_import_the_models(package):
    upward = [(mod, imp) for mod, imports in _modules(package) for imp in imports
              if imp.startswith(BELOW[package])]
    assert not upward, f"{package} imports what is built on it: {upward}"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check is not vacuous: a file importing pipelines is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipelines.cli import app\n")
    assert "pipelines.cli.app" in _imports(bad)


PUBLIC_API = {
    "forecasting": [
        "BlendedSeverity", "Cells", "CiplanError", "City", "ClaimsModel", "CohortSpec",
        "DataOptions", "Dataset", "EngineError", "Forecast", "GBMFrequency",
        "GammaSeverityGLM", "InputError", "Market", "Plan", "PoissonFrequencyGLM",
        "ScenarioSet", "Scheme", "SpecialRules", "SplicedSeverity", "SplicedSeverityModel",
        "UserError", "backtest", "engine_names", "fit_spliced", "history", "load_data",
        "load_scheme", "simulate_city", "write_data_dir", "year_result"],
    "forecasting.data": ["Cells", "CohortSpec", "DataOptions", "Dataset", "SeveritySummary",
                         "Source", "fingerprint", "load_data", "write_data_dir"],
    "forecasting.data.engines": ["AUTO", "ENGINES", "Engine", "NeedsDetail", "Unsupported",
                                 "engine_names", "get_engine"],
    "forecasting.scheme": ["Market", "Plan", "Scheme", "SpecialRules", "YearResult", "history",
                           "load_scheme", "member_payouts", "payouts_by_age", "plan_from_dict",
                           "plan_to_dict", "scheme_to_toml", "year_result"],
    "forecasting.models": ["BlendedSeverity", "ClaimsModel", "Completion", "GBMFrequency",
                           "GammaSeverityGLM", "METRICS", "PoissonFrequencyGLM",
                           "SplicedSeverity", "SplicedSeverityModel", "backtest", "complete",
                           "developed", "fit_spliced", "project_enrollment"],
    "optimization": ["InfeasibleError", "OBJECTIVES", "Optimum", "PlanKPIs", "PlanSpace",
                     "SOLVERS", "evaluate_plan", "frontier", "load_space", "member_impact",
                     "optimize", "scenario_set", "shadow_prices"],
    "pipelines": ["PROPOSALS", "app", "load_forecast", "main", "run_all", "run_forecast",
                  "run_optimize", "tracking_uri", "train", "write_report"],
    "pipelines.workflows": ["ForecastResult", "OptimizeResult", "RunSummary", "TrainResult",
                            "builtin_data", "load_forecast", "run_all", "run_forecast",
                            "run_optimize", "write_city", "write_regions"],
    "pipelines.report": ["Report", "read_plans", "write_report"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC_API))
def test_public_api_is_pinned(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(PUBLIC_API[package])
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name} does not resolve"


def test_importing_the_packages_loads_no_heavy_library():
    """`import forecasting, optimization, pipelines` has no side effects worth the name:
    no scikit-learn, DuckDB, MLflow or matplotlib until a name that needs them is used."""
    import subprocess
    import sys

    code = ("import sys, forecasting, optimization, pipelines; "
            "print(sorted(m for m in ('sklearn', 'duckdb', 'mlflow', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
