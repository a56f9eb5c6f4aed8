"""Reading tables from CSV or Parquet and writing outputs atomically (temp file, then rename)."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from forecasting.errors import InputError, rows_hint

TABLE_SUFFIXES = (".parquet", ".csv")


def read_text(path: Path) -> str:
    """A small UTF-8 text file (TOML, JSON), with one-line errors for a missing, unreadable
    or wrongly encoded file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder; expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; expected a readable file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; re-save it as UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def find_table(directory: Path, name: str) -> Path:
    """Where table `name` of a data directory is: `name.parquet`, `name.csv`, or a folder
    `name/` of hive-partitioned Parquet files (e.g. name/year=2021/region=R07/part-0.parquet)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: data directory not found")
    found = [p for s in TABLE_SUFFIXES if (p := directory / f"{name}{s}").exists()]
    if (directory / name).is_dir():
        found.append(directory / name)
    if not found:
        others = sorted(p.name for p in directory.glob(f"{name}.*"))
        hint = f" (found {', '.join(others)}: unknown format)" if others else ""
        raise InputError(f"{directory}: missing {name}.parquet or {name}.csv{hint}")
    if len(found) > 1:
        raise InputError(f"{directory}: both {found[0].name} and {found[1].name}; keep one")
    return found[0]


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a CSV or Parquet file into Arrow, with a one-line error for unreadable files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    suffix = ".parquet" if path.is_dir() else path.suffix.lower()
    try:
        if path.is_dir():
            ds = pads.dataset(path, format="parquet", partitioning="hive")
            if not ds.files:
                raise InputError(f"{path}: no Parquet files in the folder")
            cols = [c for c in columns if c in ds.schema.names] if columns else None
            table = ds.to_table(columns=cols)  # fragments' rows in fragment order
            _remember_files(path, ds)
        elif suffix == ".parquet":
            schema = pq.read_schema(path)
            cols = [c for c in columns if c in schema.names] if columns else None
            table = pq.read_table(path, columns=cols)
        elif suffix == ".csv":
            table = _read_csv(path)
        else:
            raise InputError(f"{path}: unknown format {suffix!r}; expected .csv or .parquet")
    except InputError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable {suffix[1:]} file ({reason})") from None
    if table.num_rows == 0:
        raise InputError(f"{path}: the table is empty; expected at least one row")
    return table


# Which file each row of a partitioned folder came from, so that errors can name the file
# and the row within it: folder -> (files, first row of each file in the table).
_FILES: dict[str, tuple[list[str], np.ndarray]] = {}


def _remember_files(path: Path, ds: pads.Dataset) -> None:
    frags = list(ds.get_fragments())
    counts = [frag.count_rows() for frag in frags]
    _FILES[str(Path(path).resolve())] = ([f.path for f in frags],
                                         np.cumsum([0, *counts[:-1]]).astype("int64"))


def where(path: Path, rows, what: str = "") -> str:
    """'<file>: <what>, rows …' for an error message. For a partitioned folder the file is
    the one holding the first offending row and the rows are counted within it."""
    rows = np.asarray(list(rows), dtype="int64")
    label, local, others = str(path), rows, 0
    found = _FILES.get(str(Path(path).resolve()))
    if found is not None and rows.size:
        files, starts = found
        i = int(np.searchsorted(starts, rows[0], side="right") - 1)
        end = starts[i + 1] if i + 1 < len(starts) else np.iinfo("int64").max
        inside = (rows >= starts[i]) & (rows < end)
        label, local, others = files[i], rows[inside] - starts[i], int((~inside).sum())
    more = f" (and {others} more in other files)" if others else ""
    return f"{label}: {what + ', ' if what else ''}{rows_hint(local)}{more}"


def _read_csv(path: Path) -> pa.Table:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        raise InputError(f"{path}: binary content in a .csv file; expected comma-separated text")
    first = head.split(b"\n", 1)[0]
    if b"," not in first and any(d in first for d in (b";", b"\t", b"|")):
        raise InputError(f"{path}: the header is not comma-separated; expected ',' as delimiter")
    # Read every column as text first: type checks happen in the contract with row numbers,
    # so that "12a" in a cost column is reported, never silently turned into NaN.
    header = next(csv.reader([first.decode("utf-8", errors="replace").rstrip("\r")]))
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True
        ),
    )


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success its files replace those in `target`.

    Nothing appears in `target` unless the block finishes: a failure leaves it untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        target.mkdir(exist_ok=True)
        for item in sorted(tmp.iterdir()):
            dest = target / item.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(item, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def columns_of(path: Path) -> list[str]:
    """Column names of a table (CSV header, Parquet schema, or partitioned folder)."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        try:
            return pads.dataset(path, format="parquet", partitioning="hive").schema.names
        except (pa.ArrowException, OSError):
            return []
    with open(path, encoding="utf-8", errors="replace") as fh:
        return next(csv.reader([fh.readline().strip()]), [])


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet or CSV by the file's suffix (callers wrap it in atomic_dir)."""
    path = Path(path)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        raise InputError(f"{path}: unknown format {path.suffix!r}; expected .csv or .parquet")
