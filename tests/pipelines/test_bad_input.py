"""The bad-input table of issue 11, one case per row: exit code 2, exactly one line on
stderr naming the file (column and rows where there are any), nothing written — no output
file or folder, no MLflow run, and no code run from a file that came from elsewhere."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from forecasting.data.publish import write_manifest
from optimization.space import default_space_text
from pipelines.cli import app
from pipelines.tracking import tracking_uri
from tests.cli import ciplan_process, one_line_error, runner, snapshot
from tests.payload import payload_bytes

PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # linux/prctl.h, capability.h


@dataclass
class Case:
    """A ciplan command on bad input and the fragments its one line of error must hold."""

    args: list[str]
    expect: tuple[str, ...]
    process: dict | None = None  # run as a process of its own, with these arguments
    env: dict[str, str] = field(default_factory=dict)
    never: Path | None = None  # a file a payload would create


def _edit_csv(path: Path, change: Callable[[pd.DataFrame], None]) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame)
    frame.to_csv(path, index=False)


def _costs(*values: str) -> Callable[[pd.DataFrame], None]:
    """Claims of one member-year (the first claim's) get these costs, from row 3 on."""
    def change(frame):
        for i, value in enumerate(values):
            frame.loc[2 + i, ["member_id", "year"]] = frame.loc[2, ["member_id", "year"]]
            frame.loc[2 + i, "eligible_cost"] = value
    return change


def history(data: Path) -> list[str]:
    return ["history", "--data", str(data)]


# ---------------------------------------------------------------- data


def zeros_64mb(ctx) -> Case:
    (ctx.data / "members.csv").write_bytes(bytes(64 << 20))
    return Case(history(ctx.data), ("members.csv", "binary content"))


def gbk_text(ctx) -> Case:
    _gbk_ids(ctx.data)
    return Case(history(ctx.data), ("members.csv", "line 2 is not utf-8 text",
                                    "looks like GBK", "--encoding gbk"))


def _gbk_ids(data: Path) -> None:
    """Member ids in Chinese (成员…), both files saved as GBK (Chinese Windows)."""
    for name in ("members.csv", "claims.csv"):
        path = data / name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["member_id"] = "成员" + frame["member_id"]
        path.write_bytes(frame.to_csv(index=False).encode("gbk"))


def cost_1e300(ctx) -> Case:
    _edit_csv(ctx.data / "claims.csv", _costs("1e300"))
    return Case(history(ctx.data), ("claims.csv", "column 'eligible_cost'", "row 3:",
                                    "from 0 to 1e+09", "got 1e+300"))


def costs_summing_to_inf(ctx) -> Case:
    _edit_csv(ctx.data / "claims.csv", _costs("1.7e308", "1.7e308"))
    return Case(history(ctx.data), ("claims.csv", "column 'eligible_cost'", "rows 3, 4",
                                    "got 1.7e+308"))


def annual_cost_above_ceiling(ctx) -> Case:
    _edit_csv(ctx.data / "claims.csv", _costs("600000000", "600000000"))
    return Case(history(ctx.data), ("claims.csv", "columns 'member_id','year', rows", "3, 4:",
                                    "annual eligible cost of at most 1e+09 per member-year "
                                    "in the data's money unit", "got 1.2e+09"))


def train_on_bad_costs(ctx) -> Case:
    """Training starts its MLflow helper before reading: a new store must not appear."""
    _edit_csv(ctx.data / "claims.csv", _costs("1e300"))
    return Case(["train", "--data", str(ctx.data)], ("claims.csv", "column 'eligible_cost'",
                                                     "got 1e+300"),
                env={"MLFLOW_TRACKING_URI": f"sqlite:///{ctx.tmp / 'new-store' / 'mlflow.db'}"})


def train_on_one_year(ctx) -> Case:
    """Data of one year cannot be backtested: refused before the store is touched (no new
    store folder, no lock file beside it)."""
    for name in ("members.csv", "claims.csv"):
        _edit_csv(ctx.data / name, lambda f: f.drop(f.index[f["year"] != f["year"].max()],
                                                    inplace=True))
    return Case(["train", "--data", str(ctx.data)], ("training needs at least two years",),
                env={"MLFLOW_TRACKING_URI": f"sqlite:///{ctx.tmp / 'new-store' / 'mlflow.db'}"})


def unreadable_file(ctx) -> Case:
    (ctx.data / "members.csv").chmod(0)
    return Case(history(ctx.data), ("members.csv", "permission denied"),
                process={"preexec_fn": _as_a_user})


def _as_a_user() -> None:
    """Root reads any file; drop the capabilities that let it, for the command's process."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def dangling_symlink(ctx) -> Case:
    (ctx.data / "members.csv").unlink()
    (ctx.data / "members.csv").symlink_to(ctx.tmp / "elsewhere.csv")
    return Case(history(ctx.data), ("members.csv", "symbolic link to", "does not exist"))


def symlink_loop(ctx) -> Case:
    (ctx.data / "members.csv").unlink()
    (ctx.data / "members.csv").symlink_to("members.csv")
    return Case(history(ctx.data), ("members.csv", "loops back on itself"))


# ---------------------------------------------------------------- the MLflow store


def truncated_store(ctx) -> Case:
    db = ctx.tmp / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(Path(ctx.store) / "mlflow.db", db)
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 3)
    return Case(["forecast", "--data", str(ctx.data), "--year", "2022", "--out",
                 str(ctx.tmp / "fc")], ("mlflow.db", "the MLflow store is damaged"),
                env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})


def mlflow_lines_on_stderr(ctx) -> Case:
    """An empty store file: MLflow creates its tables (and says so at INFO) before ciplan
    finds no champion. The store lives apart: filling it is MLflow's own business."""
    db = ctx.private() / "new.db"
    db.touch()
    return Case(["forecast", "--data", str(ctx.data), "--year", "2022", "--out",
                 str(ctx.tmp / "fc")], ("no model 'claim-frequency'", "run `ciplan train`"),
                process={}, env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})


# ---------------------------------------------------------------- forecast folders


def _optimize(ctx, forecast: Path) -> list[str]:
    return ["optimize", "--forecast", str(forecast), "--out", str(ctx.tmp / "plan"),
            "--frontier-points", "2"]


def forecast_garbage(ctx) -> Case:
    """Garbage from the other side of the table, with a manifest that matches it."""
    fc = ctx.forecast_copy()
    (fc / "forecast.json").write_bytes(os.urandom(3000))
    write_manifest(fc, "forecast", {})
    return Case(_optimize(ctx, fc), ("forecast.json", "not a ciplan forecast"))


def forecast_empty_folder(ctx) -> Case:
    (ctx.tmp / "empty").mkdir()
    return Case(_optimize(ctx, ctx.tmp / "empty"), ("empty", "no manifest.json",
                                                    "`ciplan forecast` output folder"))


def forecast_truncated(ctx) -> Case:
    fc = ctx.forecast_copy()
    path = fc / "cohorts.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Case(_optimize(ctx, fc), ("cohorts.parquet", "does not match the SHA-256"))


def forecast_wrong_object(ctx) -> Case:
    fc = ctx.forecast_copy()
    (fc / "forecast.json").write_text(json.dumps([{"plan": "not a forecast"}]))
    write_manifest(fc, "forecast", {})
    return Case(_optimize(ctx, fc), ("forecast.json", "not a ciplan forecast"))


def forecast_old_pickle(ctx) -> Case:
    """A folder of the old format whose forecast.joblib would run code if unpickled."""
    old = ctx.tmp / "old"
    old.mkdir()
    (old / "forecast.joblib").write_bytes(payload_bytes(ctx.marker))
    shutil.copy(ctx.forecast / "summary.json", old)
    return Case(_optimize(ctx, old), ("old", "old pickle format", "`ciplan forecast`"),
                never=ctx.marker)


def out_is_a_file(ctx) -> Case:
    (ctx.tmp / "plan").write_text("not a folder")
    return Case(_optimize(ctx, ctx.forecast), ("plan", "exists and is not a folder"))


def disk_full(ctx) -> Case:
    """Writing fails part-way (a file size limit, as on a full disk)."""
    return Case(["simulate", "--out", str(ctx.tmp / "city"), "--scale", "0.002"],
                ("city", "cannot write the output", "nothing was written"),
                process={"preexec_fn": _small_files})


def _small_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))


# ---------------------------------------------------------------- plan files and space


def _plan_folder(ctx, doc: dict) -> Path:
    folder = ctx.tmp / "plans" / "A"
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text(json.dumps(doc))
    write_manifest(folder, "plan", {})
    return folder


def plan_empty_object(ctx) -> Case:
    folder = _plan_folder(ctx, {})
    return Case(["report", "--plans", str(folder), "--out", str(ctx.tmp / "report")],
                ("plan.json", "not a ciplan plan", "'objective'"))


def unknown_proposal(ctx) -> Case:
    folder = _plan_folder(ctx, {"proposal": "Z", "objective": "min-loss", "year": 2022})
    return Case(["report", "--plans", str(folder), "--out", str(ctx.tmp / "report")],
                ("plan.json", "key 'proposal'", "A, B, C", "got 'Z'"))


def _space(ctx, old: str, new: str) -> list[str]:
    text = default_space_text()
    assert old in text
    path = ctx.tmp / "space.toml"
    path.write_text(text.replace(old, new))
    return [*_optimize(ctx, ctx.forecast), "--config", str(path)]


def negative_cap(ctx) -> Case:
    return Case(_space(ctx, 'candidates = [280000.0, 300000.0, 400000.0, "none"]',
                       'candidates = [-300000.0, "none"]'),
                ("space.toml", "cap.candidates", "> 0", "-300000"))


def fixed_premium_outside_bounds(ctx) -> Case:
    return Case(_space(ctx, "fixed = 60.0", "fixed = 90.0"),
                ("space.toml", "premium", "fixed premium 90", "min 55 and max 80"))


CASES = [zeros_64mb, gbk_text, cost_1e300, costs_summing_to_inf, annual_cost_above_ceiling,
         train_on_bad_costs, train_on_one_year, unreadable_file, dangling_symlink,
         symlink_loop, truncated_store,
         mlflow_lines_on_stderr, forecast_garbage, forecast_empty_folder, forecast_truncated,
         forecast_wrong_object, forecast_old_pickle, out_is_a_file, disk_full,
         plan_empty_object, unknown_proposal, negative_cap, fixed_premium_outside_bounds]
NEEDS_FORECAST = {forecast_garbage, forecast_truncated, forecast_wrong_object,
                  forecast_old_pickle, out_is_a_file, negative_cap,
                  fixed_premium_outside_bounds, truncated_store}


class Context:
    """Where a case builds its bad input: a fresh tiny CSV city, the session's forecast."""

    def __init__(self, tmp: Path, data: Path, request):
        self.tmp, self.data, self._request = tmp, data, request
        self.marker = tmp / "payload-ran"

    @property
    def forecast(self) -> Path:
        return self._request.getfixturevalue("forecast_dir")

    @property
    def store(self) -> Path:
        return self._request.getfixturevalue("store")

    def forecast_copy(self) -> Path:
        return Path(shutil.copytree(self.forecast, self.tmp / "fc-copy"))

    def private(self) -> Path:
        """A folder outside the watched one, removed after the test."""
        root = Path(tempfile.mkdtemp(prefix="ciplan-store-"))
        self._request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
        return root


def _runs() -> int:
    """Runs in the store the session's tests log to (0 before any)."""
    uri = tracking_uri()
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_nothing_written(make, tiny_csv_dir, tmp_path,
                                                            request):
    if make in NEEDS_FORECAST:
        request.getfixturevalue("forecast_dir")  # before the snapshot: a trained store
    case = make(Context(tmp_path, tiny_csv_dir, request))
    before, runs = snapshot(tmp_path), _runs()
    if case.process is not None:
        done = ciplan_process(case.args, env=case.env, **case.process)
        exit_code, stderr = done.returncode, done.stderr
    else:
        result = runner.invoke(app, case.args, env=case.env or None)
        assert "Traceback" not in result.output
        exit_code, stderr = result.exit_code, result.stderr
    one_line_error(exit_code, stderr, *case.expect)
    assert snapshot(tmp_path) == before, "something was written"
    assert _runs() == runs, "an MLflow run was started"
    if case.never is not None:
        assert not case.never.exists(), "code from a file ran"


def test_gbk_data_read_with_encoding_gbk_equal_the_utf8_data(tiny_csv_dir, tmp_path):
    """The GBK file of the table above loads with --encoding gbk, as its UTF-8 twin does."""
    utf8 = shutil.copytree(tiny_csv_dir, tmp_path / "utf8")
    _gbk_ids(tiny_csv_dir)
    for name in ("members.csv", "claims.csv"):
        text = (tiny_csv_dir / name).read_bytes().decode("gbk")
        (utf8 / name).write_text(text, encoding="utf-8")
    as_gbk = runner.invoke(app, [*history(tiny_csv_dir), "--encoding", "gbk", "--format",
                                  "json"])
    as_utf8 = runner.invoke(app, [*history(utf8), "--format", "json"])
    assert as_gbk.exit_code == as_utf8.exit_code == 0, as_gbk.output
    assert json.loads(as_gbk.stdout) == json.loads(as_utf8.stdout)


@pytest.mark.parametrize("saved", [("members.csv",), ("members.csv", "claims.csv")])
def test_excel_utf8_bom_is_accepted(tiny_csv_dir, saved):
    """Excel's "CSV UTF-8" starts a file with a byte-order mark: the same accounts, whether
    one file or both went through Excel."""
    plain = runner.invoke(app, [*history(tiny_csv_dir), "--format", "json"])
    for name in saved:
        path = tiny_csv_dir / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    with_bom = runner.invoke(app, [*history(tiny_csv_dir), "--format", "json"])
    assert plain.exit_code == with_bom.exit_code == 0, with_bom.output
    assert json.loads(with_bom.stdout) == json.loads(plain.stdout)


def test_a_model_ceiling_can_be_raised(tiny_csv_dir):
    """--max-cost is the user's: the same 1.2e9 member-year passes with a higher ceiling."""
    _edit_csv(tiny_csv_dir / "claims.csv", _costs("600000000", "600000000"))
    result = runner.invoke(app, [*history(tiny_csv_dir), "--max-cost", "2e9"])
    assert result.exit_code == 0, result.output


def test_one_year_refused_with_nothing_else_on_stderr(tiny_csv_dir):
    """The refusal comes before the progress display starts: stderr is the one line, not
    a blank line before it."""
    for name in ("members.csv", "claims.csv"):
        _edit_csv(tiny_csv_dir / name, lambda f: f.drop(f.index[f["year"] != f["year"].max()],
                                                        inplace=True))
    result = runner.invoke(app, ["train", "--data", str(tiny_csv_dir)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("command", [["train"], ["run", "--out", "OUT"]])
def test_bad_data_found_while_the_progress_shows_is_one_line(tiny_csv_dir, tmp_path, command):
    """A bad cost is found while the progress display is up: rich ended the display on a
    pipe with an empty line, so stderr held a blank line before the `Error: …` line."""
    _edit_csv(tiny_csv_dir / "claims.csv", _costs("-3", "5"))
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    result = runner.invoke(app, [*args, "--data", str(tiny_csv_dir)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()
