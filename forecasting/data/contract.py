"""The data contract (DESIGN §2): members and claims checked column by column.

Every check names the file, the column, the first offending rows (1-based data rows,
header excluded) and what was expected. Nothing is coerced silently: a text value in a
numeric column, an unknown category or a fractional year is an error, not a NaN.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forecasting.data.cohorts import RESIDENCES, SEXES
from forecasting.data.io import where
from forecasting.data.options import MAX_COST
from forecasting.errors import InputError

MEMBER_COLUMNS = ("member_id", "year", "sex", "residence", "special_group", "exposure")
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

    def _lookup(self, code_of, expected: str) -> np.ndarray:
        """Map each distinct text value through `code_of` (-1 = not allowed) to a code."""
        encoded = pc.dictionary_encode(self.values.cast(pa.string())).combine_chunks()
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

    def identifier(self) -> np.ndarray:
        """Member ids: whole numbers or non-empty text, kept as they are."""
        arr = self.values
        self._first_bad(arr.is_null().to_numpy(zero_copy_only=False), "a member id")
        if pa.types.is_integer(arr.type):
            return arr.to_numpy()
        if pa.types.is_floating(arr.type):
            return self.numeric(integer=True)
        text = arr.cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
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


def validate_members(path: Path, table: pa.Table) -> pd.DataFrame:
    """Members as a typed frame: member_id, year, age, sex, residence, special_group, exposure."""
    age_col = age_column(table.column_names)
    require_columns(path, table, (*MEMBER_COLUMNS, age_col))
    col = columns(path, table)

    year = col("year").numeric(integer=True)
    in_range(col("year"), year, 1900, 2200, "a calendar year")
    raw_age = col(age_col).numeric(integer=True)
    age = raw_age if age_col == "age" else year - raw_age
    in_range(col(age_col), age, 0, 120, "an age from 0 to 120 in the member-year")
    exposure = col("exposure").numeric()
    in_range(col("exposure"), exposure, 0.0, 1.0, "exposure in (0, 1] years", low_open=True)
    frame = pd.DataFrame({
        "member_id": col("member_id").identifier(),
        "year": year,
        "age": age,
        "sex": pd.Categorical.from_codes(col("sex").category(SEXES), SEXES),
        "residence": pd.Categorical.from_codes(col("residence").category(RESIDENCES), RESIDENCES),
        "special_group": col("special_group").boolean(),
        "exposure": exposure,
    })
    if "region" in table.column_names:  # several cities in one data set
        frame["region"] = col("region").identifier().astype(str)
    return frame


def validate_claims(path: Path, table: pa.Table, max_cost: float = MAX_COST) -> pd.DataFrame:
    """Claims as a typed frame: member_id, year, eligible_cost (CNY, from 0 to `max_cost`),
    optional paid (the same range)."""
    require_columns(path, table, CLAIM_COLUMNS)
    col = columns(path, table)

    cost = col("eligible_cost").numeric()
    in_range(col("eligible_cost"), cost, 0.0, max_cost,
             f"an eligible cost from 0 to {max_cost:g} CNY (--max-cost)")
    year = col("year").numeric(integer=True)
    in_range(col("year"), year, 1900, 2200, "a calendar year")
    frame = pd.DataFrame({
        "member_id": col("member_id").identifier(),
        "year": year,
        "eligible_cost": cost,
    })
    if "paid" in table.column_names:
        paid = col("paid").numeric()
        in_range(col("paid"), paid, 0.0, max_cost,
                 f"a paid amount from 0 to {max_cost:g} CNY (--max-cost)")
        frame["paid"] = paid
    return frame
