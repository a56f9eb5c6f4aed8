"""Plan folders of the small city's 2022 forecast and their report in each language."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="session")
def plan_dirs(forecast_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("plans")
    dirs = []
    for objective in ("min-loss", "break-even"):
        out = root / objective
        result = runner.invoke(app, ["optimize", "--forecast", str(forecast_dir),
                                     "--objective", objective, "--out", str(out),
                                     "--frontier-points", "4"])
        assert result.exit_code == 0, result.output
        dirs.append(out)
    return dirs


@pytest.fixture(scope="session", params=["en", "zh"])
def report(request, plan_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"report-{request.param}") / "report"
    args = ["report", "--out", str(out), "--lang", request.param]
    for d in plan_dirs:
        args += ["--plans", str(d)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return request.param, out


