"""The data contract (DESIGN §2): members and claims checked column by column.

Every check names the file, the column, the first offending rows (1-based data rows,
header excluded) and what was expected. Nothing is coerced silently: a text value in a
numeric column, an unknown category or a fractional year is an error, not a NaN.
"""

from __future__ import annotations

import datetime
import difflib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forecasting.data.cohorts import AGE_LIMIT, FIXED_LEVELS
from forecasting.data.io import where
from forecasting.data.options import MAX_COST
from forecasting.errors import InputError

MEMBER_COLUMNS = ("member_id", "year", "exposure")
CLAIM_COLUMNS = ("member_id", "year", "eligible_cost")
TRUE_TEXT = {"true", "1", "yes", "t", "y"}
FALSE_TEXT = {"false", "0", "no", "f", "n"}


class Column:
    """One column of one file, with helpers that raise contract errors naming both."""

    def __init__(self, path: Path, name: str, values: pa.ChunkedArray):
        self.path, self.name, self.values = path, name, values

    def fail(self, rows: np.ndarray, expected: str, got: str | None = None) -> None:
        got_text = f"; got {got}" if got else ""
        raise InputError(
            f"{where(self.path, rows, f'column {self.name!r}')}: expected {expected}{got_text}"
        )

    def _first_bad(self, mask: np.ndarray, expected: str) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            sample = self.values.take(pa.array(rows[:1])).to_pylist()[0]
            self.fail(rows, expected, repr(sample))

    def numeric(self, integer: bool = False) -> np.ndarray:
        """The column as float64 (or int64), refusing text, blanks, NaN and fractions."""
        kind = "a whole number" if integer else "a number"
        arr = self.values
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            text = pc.utf8_trim_whitespace(arr)
            parsed = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False)), errors="coerce")
            self._first_bad(parsed.isna().to_numpy(), kind)
            out = parsed.to_numpy(dtype="float64")
        elif pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), kind)
            out = arr.to_numpy().astype("float64", copy=False)
        else:
            raise InputError(f"{self.path}: column {self.name!r}: expected {kind}; "
                             f"got values of type {arr.type}")
        self._first_bad(~np.isfinite(out), f"{kind} (not NaN or infinite)")
        if integer:
            self._first_bad(out != np.round(out), kind)
            return out.astype("int64")
        return out

    def _as_text(self, expected: str) -> pa.ChunkedArray:
        """The column as text; a type that holds none (lists, structs, bytes that are not
        UTF-8, from a Parquet file) is named as an error."""
        try:
            return self.values.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise InputError(f"{self.path}: column {self.name!r}: expected {expected}; "
                             f"got values of type {self.values.type}") from None

    def _lookup(self, code_of, expected: str) -> np.ndarray:
        """Map each distinct text value through `code_of` (-1 = not allowed) to a code."""
        encoded = pc.dictionary_encode(self._as_text(expected)).combine_chunks()
        mapping = np.array([code_of(v) for v in encoded.dictionary.to_pylist()] or [-1])
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        out = np.where(codes < 0, -1, mapping[np.maximum(codes, 0)])
        self._first_bad(out < 0, expected)
        return out

    def category(self, allowed: tuple[str, ...]) -> np.ndarray:
        """Codes 0..len(allowed)-1 of a text column whose values must be among `allowed`."""
        codes = self._lookup(lambda v: allowed.index(v) if v in allowed else -1,
                             f"one of {', '.join(allowed)}")
        return codes.astype("int8")

    def boolean(self) -> np.ndarray:
        """True/False from a bool column, 0/1, or the texts true/false/yes/no/1/0."""
        arr = self.values
        if pa.types.is_boolean(arr.type):
            self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), "true or false")
            return arr.to_numpy(zero_copy_only=False).astype(bool)
        if pa.types.is_integer(arr.type):
            vals = arr.fill_null(-1).to_numpy()
            self._first_bad((vals != 0) & (vals != 1), "true or false (1 or 0)")
            return vals == 1

        def code_of(text: str) -> int:
            text = text.strip().lower()
            return 1 if text in TRUE_TEXT else 0 if text in FALSE_TEXT else -1
        return self._lookup(code_of, "true or false") == 1

    def text(self) -> np.ndarray:
        """A categorical key as text (numbers written as they are); no missing values."""
        arr = self.values
        self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), "a value")
        text = pc.utf8_trim_whitespace(self._as_text("a value"))
        self._first_bad(pc.equal(text, "").fill_null(True).to_numpy(zero_copy_only=False),
                        "a value (not blank)")
        return text.to_numpy(zero_copy_only=False).astype(str)

    def dates(self) -> np.ndarray:
        """Calendar dates (datetime64[D]) from a date or timestamp column or ISO text
        (2021-07-01); blanks and unreadable text are errors."""
        arr = self.values
        if pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
            self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), "a date")
            return np.asarray(arr.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False),
                              dtype="datetime64[D]")
        text = pd.Series(self._as_text("a date").to_numpy(zero_copy_only=False))
        parsed = pd.to_datetime(text.str.strip(), errors="coerce", format="ISO8601")
        self._first_bad(parsed.isna().to_numpy(), "a date like 2021-07-01")
        return parsed.to_numpy().astype("datetime64[D]")

    def identifier(self) -> np.ndarray:
        """Member ids: whole numbers or non-empty text, kept as they are."""
        arr = self.values
        self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), "a member id")
        if pa.types.is_integer(arr.type):
            return arr.to_numpy()
        if pa.types.is_floating(arr.type):
            return self.numeric(integer=True)
        text = self._as_text("a member id").to_numpy(zero_copy_only=False).astype(object)
        return text


def age_column(names: list[str]) -> str:
    """Members give `age`, or `birth_year` from which the age in the year follows."""
    return "age" if "age" in names or "birth_year" not in names else "birth_year"


def columns(path: Path, table: pa.Table):
    """A factory of `Column`s of `table`, all naming `path` in their errors."""
    return lambda name: Column(path, name, table.column(name))


def require_columns(path: Path, table: pa.Table, required: tuple[str, ...]) -> None:
    """Every required column is present; a near miss is named ("did you mean 'exposure'?")."""
    names = table.column_names
    for col in required:
        if col not in names:
            close = difflib.get_close_matches(col, names, n=1, cutoff=0.6)
            hint = f"; found {close[0]!r}, did you mean {col!r}?" if close else ""
            raise InputError(f"{path}: missing column {col!r}{hint} (columns: {', '.join(names)})")


def in_range(col: Column, values: np.ndarray, low: float, high: float, expected: str,
             low_open: bool = False) -> None:
    """Raise naming the rows whose values fall outside [low, high] (or (low, high])."""
    bad = (values <= low if low_open else values < low) | (values > high)
    rows = np.flatnonzero(bad)
    if rows.size:
        col.fail(rows, expected, f"{values[rows[0]]:g}")


def _keys_frame(path: Path, table: pa.Table, keys: tuple[str, ...]) -> dict[str, object]:
    """The cohort keys as typed columns: sex and residence from their fixed vocabulary, any
    other key as text (a missing value is an error)."""
    col = columns(path, table)
    out: dict[str, object] = {}
    for key in keys:
        if key == "special_group":
            continue  # always read below: the scheme's rules need it
        if key in FIXED_LEVELS:
            allowed = FIXED_LEVELS[key]
            out[key] = pd.Categorical.from_codes(col(key).category(allowed), allowed)
        else:
            out[key] = col(key).text()
    return out


def _member_years(path: Path, table: pa.Table) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Year and exposure of each row, and what `split_periods` needs when the rows hold
    policy periods (`period_start`, `period_end`, the last day covered) instead."""
    col = columns(path, table)
    if "year" in table.column_names or not {"period_start", "period_end"} <= set(
            table.column_names):
        require_columns(path, table, MEMBER_COLUMNS)
        year = col("year").numeric(integer=True)
        in_range(col("year"), year, 1900, 2200, "a calendar year")
        exposure = col("exposure").numeric()
        in_range(col("exposure"), exposure, 0.0, 1.0, "exposure in (0, 1] years",
                 low_open=True)
        return year, exposure, ()
    start, end = col("period_start").dates(), col("period_end").dates()
    rows = np.flatnonzero(end < start)
    if rows.size:
        col("period_end").fail(rows, "a period end on or after its start",
                               f"{end[rows[0]]} before {start[rows[0]]}")
    year = start.astype("datetime64[Y]").astype("int64") + 1970
    in_range(col("period_start"), year, 1900, 2200, "a date in a calendar year 1900-2200")
    return year, np.ones(len(year)), (start, end)


def validate_members(path: Path, table: pa.Table,
                     keys: tuple[str, ...] = ("sex", "residence", "special_group")
                     ) -> pd.DataFrame:
    """Members as a typed frame: member_id, year, age, the cohort `keys`, special_group
    (False when the data have no such column) and exposure. Rows holding a policy period
    (`period_start`, `period_end` instead of `year` and `exposure`) are split into calendar
    years (forecasting.data.periods); an `age` is then the age at the period's start."""
    age_col = age_column(table.column_names)
    require_columns(path, table, ("member_id", age_col, *keys))
    col = columns(path, table)
    year, exposure, periods = _member_years(path, table)
    raw_age = col(age_col).numeric(integer=True)
    age = raw_age if age_col == "age" else year - raw_age
    in_range(col(age_col), age, 0, AGE_LIMIT, f"an age from 0 to {AGE_LIMIT} in the member-year")
    special = (col("special_group").boolean() if "special_group" in table.column_names
               else np.zeros(len(year), dtype=bool))
    frame = pd.DataFrame({
        "member_id": col("member_id").identifier(),
        "year": year,
        "age": age,
        **_keys_frame(path, table, keys),
        "special_group": special,
        "exposure": exposure,
    })
    if not periods:
        return frame
    from forecasting.data.periods import split_periods

    return split_periods(frame, *periods, where_rows=lambda rows, what, got: col(
        "period_end").fail(rows, what, got))


def _claim_years(path: Path, table: pa.Table) -> np.ndarray:
    """Claims name their calendar year (`year`), or a `service_date` it is read from."""
    col = columns(path, table)
    if "year" in table.column_names or "service_date" not in table.column_names:
        require_columns(path, table, CLAIM_COLUMNS)
        return col("year").numeric(integer=True)
    return col("service_date").dates().astype("datetime64[Y]").astype("int64") + 1970


def _settled(path: Path, table: pa.Table, year: np.ndarray) -> np.ndarray:
    """The claims' settlement dates, checked whether or not an as-of view reads them: a
    claim settled before its care (before its service date, or before its year without
    one) is an error in the data, refused with its rows (`ciplan import` leaves such rows
    out and names them, so the data directories it writes hold none)."""
    col = columns(path, table)
    settled = col("settlement_date").dates()
    dated = "service_date" in table.column_names
    care = (col("service_date").dates() if dated
            else (year - 1970).astype("datetime64[Y]").astype("datetime64[D]"))
    early = np.flatnonzero(settled < care)
    if early.size:
        what = ("a settlement date on or after the service date" if dated
                else "a settlement date in or after the claim's year")
        col("settlement_date").fail(early, what, f"{settled[early[0]]} before "
                                    f"{care[early[0]]}")
    return settled


def validate_claims(path: Path, table: pa.Table, max_cost: float = MAX_COST,
                    as_of: datetime.date | None = None) -> pd.DataFrame:
    """Claims as a typed frame: member_id, year, eligible_cost (from 0 to `max_cost`,
    money units of the data), optional paid (the same range); a `settlement_date` is
    checked (_settled) whether or not it is read. With `as_of`, only the claims settled
    by that date (their `settlement_date`, kept as `settled`): the data as known then."""
    year = _claim_years(path, table)
    require_columns(path, table, tuple(c for c in CLAIM_COLUMNS if c != "year"))
    col = columns(path, table)

    cost = col("eligible_cost").numeric()
    in_range(col("eligible_cost"), cost, 0.0, max_cost,
             f"an eligible cost from 0 to {max_cost:g} (--max-cost)")
    in_range(col("year" if "year" in table.column_names else "service_date"), year, 1900, 2200,
             "a calendar year")
    frame = pd.DataFrame({
        "member_id": col("member_id").identifier(),
        "year": year,
        "eligible_cost": cost,
    })
    if "paid" in table.column_names:
        paid = col("paid").numeric()
        in_range(col("paid"), paid, 0.0, max_cost,
                 f"a paid amount from 0 to {max_cost:g} (--max-cost)")
        frame["paid"] = paid
    if as_of is not None and "settlement_date" not in table.column_names:
        raise InputError(f"{path}: --as-of needs a 'settlement_date' column (when each "
                         "claim was settled)")
    if "settlement_date" in table.column_names:
        settled = _settled(path, table, year)
        if as_of is not None:
            frame["settled"] = settled
            frame = frame[frame["settled"] <= np.datetime64(as_of, "D")].reset_index(drop=True)
    return frame
