"""Bad input: one line naming file, column, rows and expectation; exit 2; nothing written."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from pipelines.cli import app
from tests.cli import fails_cleanly

runner = CliRunner()


def _edit(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    changed = change(frame)
    (frame if changed is None else changed).to_csv(path, index=False)


def _fails(data: Path, *patterns: str, args: tuple[str, ...] = ()) -> str:
    """`ciplan history` on bad data: one line holding `patterns`, nothing written anywhere
    under the data's folder."""
    return fails_cleanly(["history", "--data", str(data), *args], data.parent, *patterns)


def test_missing_file(tiny_csv_dir):
    (tiny_csv_dir / "claims.csv").unlink()
    _fails(tiny_csv_dir, "missing claims.parquet or claims.csv")


def test_unknown_format(tiny_csv_dir):
    (tiny_csv_dir / "members.csv").rename(tiny_csv_dir / "members.xlsx")
    _fails(tiny_csv_dir, "members.xlsx", "unknown format")


def test_misspelled_column(tiny_csv_dir):
    _edit(tiny_csv_dir / "members.csv", lambda f: f.rename(columns={"exposure": "exposur"}))
    _fails(tiny_csv_dir, "members.csv", "missing column 'exposure'", "did you mean")


def test_missing_column(tiny_csv_dir):
    _edit(tiny_csv_dir / "claims.csv", lambda f: f.drop(columns="eligible_cost"))
    _fails(tiny_csv_dir, "claims.csv", "missing column 'eligible_cost'")


@pytest.mark.parametrize("bad", ["-5.0", "nan", "", "12a"])
def test_bad_cost(tiny_csv_dir, bad):
    def change(f):
        f.loc[[3, 7], "eligible_cost"] = bad
    _edit(tiny_csv_dir / "claims.csv", change)
    _fails(tiny_csv_dir, "claims.csv", "column 'eligible_cost'", "rows 4, 8")


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.2"])
def test_bad_exposure(tiny_csv_dir, bad):
    def change(f):
        f.loc[10, "exposure"] = bad
    _edit(tiny_csv_dir / "members.csv", change)
    _fails(tiny_csv_dir, "members.csv", "column 'exposure'", "row 11:", "(0, 1]")


def test_text_in_numeric_column(tiny_csv_dir):
    def change(f):
        f.loc[0, "age"] = "forty"
    _edit(tiny_csv_dir / "members.csv", change)
    _fails(tiny_csv_dir, "members.csv", "column 'age'", "row 1:", "whole number", "'forty'")


def test_fractional_year_is_wrong_type(tiny_csv_dir):
    def change(f):
        f.loc[2, "year"] = "2019.5"
    _edit(tiny_csv_dir / "members.csv", change)
    _fails(tiny_csv_dir, "members.csv", "column 'year'", "row 3:", "whole number")


def test_duplicate_member_year(tiny_csv_dir):
    def change(f):
        f.loc[5] = f.loc[4]
    _edit(tiny_csv_dir / "members.csv", change)
    _fails(tiny_csv_dir, "members.csv", "row 6", "one row per member-year")


@pytest.mark.parametrize(("column", "value"), [("sex", "X"), ("residence", "suburban")])
def test_unknown_category(tiny_csv_dir, column, value):
    def change(f):
        f.loc[1, column] = value
    _edit(tiny_csv_dir / "members.csv", change)
    _fails(tiny_csv_dir, "members.csv", f"column {column!r}", "row 2:", f"'{value}'")


def test_claim_without_member_year(tiny_csv_dir):
    def change(f):
        f.loc[0, "member_id"] = "999999999"
    _edit(tiny_csv_dir / "claims.csv", change)
    _fails(tiny_csv_dir, "claims.csv", "row 1:", "member-year listed in", "999999999")


def test_empty_table(tiny_csv_dir):
    _edit(tiny_csv_dir / "claims.csv", lambda f: f.iloc[:0])
    _fails(tiny_csv_dir, "claims.csv", "empty")


def test_year_without_plan_is_refused_where_a_plan_is_needed(tiny_csv_dir):
    """Data of a year without a plan load (forecasting needs none); the accounts of that
    year need its plan and say so."""
    path = tiny_csv_dir / "scheme.toml"
    doc = tomllib.loads(path.read_text())
    for section in ("plan", "market"):
        del doc[section]["2021"]
    path.write_text(tomli_w.dumps(doc))
    _fails(tiny_csv_dir, "scheme.toml", "no [plan.2021]", "2019, 2020")


def test_other_delimiter(tiny_csv_dir):
    path = tiny_csv_dir / "members.csv"
    path.write_text(path.read_text().replace(",", ";"))
    _fails(tiny_csv_dir, "members.csv", "delimiter")


def test_binary_file(tiny_csv_dir):
    (tiny_csv_dir / "claims.csv").write_bytes(bytes(range(256)) * 10)
    _fails(tiny_csv_dir, "claims.csv", "binary")


def test_truncated_parquet(small_city, tmp_path):
    from pipelines.workflows.builtin import write_city
    data = write_city(small_city, tmp_path / "data")
    path = data / "members.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _fails(data, "members.parquet", "not a readable parquet file")


def test_bad_scheme_key(tiny_csv_dir):
    path = tiny_csv_dir / "scheme.toml"
    path.write_text(path.read_text().replace("deductible = 15000.0", "deductible = \"high\"", 1))
    _fails(tiny_csv_dir, "scheme.toml", "[plan.2019]", "'deductible'", "number")


def test_reported_above_with_small_costs(tiny_csv_dir):
    _fails(tiny_csv_dir, "claims.csv", "reported_above", args=("--reported-above", "15000"))


def _health_copy(health_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "health"
    shutil.copytree(health_dir, out)
    return out


def test_overlapping_policy_periods_named(health_dir, tmp_path):
    data = _health_copy(health_dir, tmp_path)

    def change(f):
        f.loc[len(f)] = f.loc[0]  # the same policy twice: two years of cover in one year
    _edit(data / "members.csv", change)
    err = _fails(data, "members.csv", "column 'period_end'", "do not overlap")
    assert "row 1," in err or "rows 1," in err


@pytest.mark.parametrize(("table", "row", "column", "value", "expected"), [
    ("members", 3, "period_end", "2019-01-01", "on or after its start"),
    ("claims", 2, "service_date", "next week", "a date"),
])
def test_bad_dates(health_dir, tmp_path, table, row, column, value, expected):
    data = _health_copy(health_dir, tmp_path)

    def change(f):
        f.loc[row, column] = value
    _edit(data / f"{table}.csv", change)
    _fails(data, f"{table}.csv", f"column {column!r}", f"row {row + 1}:", expected)


def test_a_cohort_key_that_is_not_a_column(health_dir, tmp_path):
    data = _health_copy(health_dir, tmp_path)
    _fails(data, "members.csv", "cohort key 'distrct'", "did you mean 'district'",
           args=("--keys", "sex,distrct"))


def test_a_bad_project_setting_names_file_and_key(health_dir, tmp_path):
    data = _health_copy(health_dir, tmp_path)
    (data / "ciplan.toml").write_text("[cohorts]\nband_width = 0\n")
    _fails(data, "ciplan.toml", "cohorts.band_width")
    (data / "ciplan.toml").write_text("[cohorts]\nband_width = 10\nage_max = 85\n")
    _fails(data, "age_max must be a multiple of band_width")


def test_missing_key_column_for_l_city_keys(tiny_csv_dir):
    """Data without residence or special group load (they are optional); a key the
    configuration names must be there."""
    _edit(tiny_csv_dir / "members.csv", lambda f: f.drop(columns=["residence",
                                                                    "special_group"]))
    result = runner.invoke(app, ["history", "--data", str(tiny_csv_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    _fails(tiny_csv_dir, "cohort key 'residence' is not a column",
           args=("--keys", "sex,residence"))


@pytest.mark.parametrize(("table", "column", "value"), [
    ("members", "sex", ["F"]),                    # a list, where a key is text
    ("members", "member_id", {"id": 1}),          # a struct, where an id is
    ("members", "residence", b"\xff\xfe"),        # bytes that are no text
    ("claims", "member_id", [1, 2]),
])
def test_parquet_columns_of_types_that_are_no_text(tiny_csv_dir, table, column, value):
    """A Parquet column holding lists, structs or raw bytes is named with its type, not a
    pyarrow traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name in ("members", "claims"):
        frame = pd.read_csv(tiny_csv_dir / f"{name}.csv")
        if name == table:
            frame[column] = [value] * len(frame)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False),
                       tiny_csv_dir / f"{name}.parquet")
        (tiny_csv_dir / f"{name}.csv").unlink()
    _fails(tiny_csv_dir, f"{table}.parquet", f"column {column!r}", "got values of type")
