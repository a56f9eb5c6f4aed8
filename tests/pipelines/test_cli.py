"""The CLI: commands work on real files, fail cleanly, and the README documents them all."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


def test_simulate_writes_a_data_directory(tmp_path):
    out = tmp_path / "city"
    result = runner.invoke(app, ["simulate", "--out", str(out), "--scale", "0.002",
                                 "--years", "2019-2022", "--seed", "3", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"members.csv", "claims.csv", "scheme.toml",
                                               "truth.json", "manifest.json"}
    members = pd.read_csv(out / "members.csv")
    assert sorted(members["year"].unique()) == [2019, 2020, 2021, 2022]
    assert [p.name for p in tmp_path.iterdir()] == ["city"]  # no temp folder left behind


@pytest.mark.parametrize(("args", "message"), [
    (["--years", "2018-2020"], "consecutively from 2019"),
    (["--years", "twenty"], "--years expected"),
    (["--format", "xml"], "--format expected parquet, csv or settlements"),
    (["--scale", "0"], "scale must be in"),
])
def test_simulate_bad_request(tmp_path, args, message):
    out = tmp_path / "city"
    result = runner.invoke(app, ["simulate", "--out", str(out), "--scale", "0.002", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_history_formats_agree(small_dir, small_city):
    as_json = runner.invoke(app, ["history", "--data", str(small_dir), "--format", "json"])
    as_csv = runner.invoke(app, ["history", "--data", str(small_dir), "--format", "csv"])
    as_table = runner.invoke(app, ["history", "--data", str(small_dir)])
    assert as_json.exit_code == as_csv.exit_code == as_table.exit_code == 0
    rows = pd.DataFrame(json.loads(as_json.stdout))
    csv = pd.read_csv(io.StringIO(as_csv.stdout))
    pd.testing.assert_frame_equal(rows, csv, check_dtype=False)
    assert list(rows["year"]) == [2019, 2020, 2021, 2022]
    # premium income is premium x head count, straight from the members file
    heads = small_city.members.groupby("year").size()
    assert (rows.set_index("year")["insured"] == heads).all()
    assert "2022" in as_table.stdout and "loss_ratio" in as_table.stdout


def test_history_bad_format(small_dir):
    result = runner.invoke(app, ["history", "--data", str(small_dir), "--format", "xml"])
    assert result.exit_code == 2 and "--format expected table, csv or json" in result.stderr


@pytest.mark.parametrize("by_age", [[], ["--by-age"]])
def test_history_names_the_money_unit_as_given(small_dir, by_age):
    """The table's title names `--currency` as it is given: user text, never read as rich
    markup (a closing tag of its own was a MarkupError, "[b]" would have been bold)."""
    result = runner.invoke(app, ["history", "--data", str(small_dir), "--currency",
                                 "[/x][b]HK$", *by_age])
    assert result.exit_code == 0, result.output
    assert "([/x][b]HK$)" in result.stdout


def _commands() -> list[str]:
    import typer.main
    return sorted(typer.main.get_command(app).commands)


def test_every_command_has_help():
    for name in _commands():
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage" in result.stdout, name


def test_help_names_the_configuration_tables_and_real_files():
    """`[data]`, `[cohorts]`, `[models]` survive rich markup, and the default plan space
    named is the file that ships."""
    root = README.parent
    train = re.sub(r"[\s│]+", " ", runner.invoke(app, ["train", "--help"]).stdout)
    for table in ("[data] reported_above", "[data] threshold_rule", "[data] currency",
                  "[cohorts] band_width", "[cohorts] age_max", "[cohorts] keys",
                  "[models] frequency_rows"):
        assert table in train, table
    optimize = re.sub(r"[\s│]+", "", runner.invoke(app, ["optimize", "--help"]).stdout)
    named = re.search(r"\(default:([\w/.]+?\.toml)", optimize).group(1)
    assert (root / named).is_file(), named


def test_readme_documents_every_command_and_option():
    """The README's CLI reference lists each command and each of its options."""
    text = README.read_text(encoding="utf-8")
    for name in _commands():
        assert re.search(rf"^#### `ciplan {name}", text, re.M), f"README lacks `ciplan {name}`"
        help_text = runner.invoke(app, [name, "--help"], terminal_width=200).stdout
        for option in set(re.findall(r"--[a-z][a-z-]+", help_text)) - {"--help"}:
            section = text.split(f"#### `ciplan {name}", 1)[1].split("####", 1)[0]
            assert option in section, f"README section for {name} lacks {option}"
    assert "make demo" in text and "make test" in text


def test_history_by_age_adds_up_to_payouts(small_dir):
    accounts = runner.invoke(app, ["history", "--data", str(small_dir), "--format", "json"])
    by_age = runner.invoke(app, ["history", "--data", str(small_dir), "--by-age",
                                 "--format", "csv"])
    assert by_age.exit_code == 0, by_age.output
    table = pd.read_csv(io.StringIO(by_age.stdout))
    assert table["age_band"].iloc[0] == "0-4" and table["age_band"].iloc[-1] == "85+"
    totals = {str(r["year"]): r["payouts"] for r in json.loads(accounts.stdout)}
    for year, total in totals.items():
        assert table[year].sum() == pytest.approx(total, rel=1e-12)
    shown = runner.invoke(app, ["history", "--data", str(small_dir), "--by-age"])
    assert shown.exit_code == 0 and "85+" in shown.stdout


@pytest.mark.parametrize("engine", ["duckdb", "pandas"])
def test_history_with_severity_summary(small_dir, engine):
    """--severity-summary: head counts and premiums exact, payouts within 0.5 % (costs are
    only known to a bucket, 1.2 % wide, so payouts under the cap and ratios move a little)."""
    base = ["history", "--data", str(small_dir), "--engine", engine, "--format", "json"]
    full = pd.DataFrame(json.loads(runner.invoke(app, base).stdout))
    summ = runner.invoke(app, [*base, "--severity-summary"])
    assert summ.exit_code == 0, summ.output
    summ = pd.DataFrame(json.loads(summ.stdout))
    assert (summ["insured"] == full["insured"]).all()
    assert (summ["premium_income"] == full["premium_income"]).all()
    assert summ["payouts"].to_numpy() == pytest.approx(full["payouts"].to_numpy(), rel=0.005)
    # the summary really was used: claimants' costs are bucket means, not the costs (the
    # payouts may coincide: bucket means of costs on one linear piece pay the same)
    from forecasting.data.dataset import load_data
    from forecasting.data.options import DataOptions
    costs = [np.sort(load_data(small_dir, DataOptions(engine=engine, severity_summary=flag))
                     .cells.claimants["cost"].to_numpy()) for flag in (False, True)]
    assert not np.array_equal(*costs)
    np.testing.assert_allclose(costs[1].sum(), costs[0].sum(), rtol=1e-9)


def test_a_bug_surfaces_as_a_bug_not_as_a_user_error(monkeypatch):
    """Only user mistakes become `Error: …` and exit 2; an internal failure keeps its
    exception (exit 1 with the traceback)."""
    def broken(*args, **kwargs):
        raise ValueError("internal")
    monkeypatch.setattr("forecasting.simulate.simulate_city", broken)  # imported on use
    result = runner.invoke(app, ["simulate", "--out", "nowhere", "--scale", "0.002"])
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)
    assert "Error:" not in result.output


def test_the_console_script_exits_with_its_status_streams_and_exit_handlers():
    """`main` ends the process without the interpreter's teardown, but as sys.exit would:
    the command's status, every line it printed, the exit handlers (MLflow's) run, and a
    thread pool left open (as libraries leave them) is told to stop, not waited for
    forever."""
    code = ("import atexit, sys; atexit.register(lambda: print('handlers ran')); "
            "from concurrent.futures import ThreadPoolExecutor; "
            "pool = ThreadPoolExecutor(1); pool.submit(int).result(); "
            "sys.argv = ['ciplan', *sys.argv[1:]]; from pipelines.cli import main; main()")
    ok = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and "Usage" in ok.stdout
    assert ok.stdout.rstrip().endswith("handlers ran")
    bad = subprocess.run([sys.executable, "-c", code, "history", "--data", "/nonexistent"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("Error: ")
    assert "handlers ran" in bad.stdout


def test_train_reads_with_a_core_left_to_its_helper(tiny_csv_dir, monkeypatch):
    """`ciplan train` reads while its helper imports MLflow: DuckDB gets a core fewer than
    the machine has (at least one); other commands read with every core."""
    import os

    import pipelines.cli as cli
    from forecasting.errors import UserError

    seen = []

    def stop(path, options, config=None):
        seen.append(options.threads)
        raise UserError("stopped after the options were made")

    monkeypatch.setattr(cli, "load_data", stop)
    for args in (["train"], ["history"]):
        result = CliRunner().invoke(app, [*args, "--data", str(tiny_csv_dir)])
        assert result.exit_code == 2, result.output
    assert seen == [max(1, (os.cpu_count() or 1) - 1), None]


def test_run_on_data_without_a_plan_in_force_stops_before_training(store, tmp_path):
    """Data imported without --scheme have no plan to weigh proposals against: `run`
    says so first (it trained and forecast, then failed on optimising)."""
    data = tmp_path / "data"
    assert runner.invoke(app, ["simulate", "--out", str(data), "--scale", "0.002"]
                         ).exit_code == 0
    (data / "scheme.toml").unlink()
    result = runner.invoke(app, ["run", "--data", str(data), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "no plan in force for 2022 or before" in line and "ciplan import --scheme" in line
    assert "Training" not in result.output and not (tmp_path / "run" / "forecast").exists()
