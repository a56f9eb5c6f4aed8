"""Reading tables from CSV or Parquet, with one-line errors for every way a file can be
wrong: missing, unreadable, a broken symbolic link, binary, in another encoding or with
another delimiter. CSV files are judged from their head (64 KB), never read whole to fail.
Outputs are written through `forecasting.data.publish`."""

from __future__ import annotations

import codecs
import csv
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from forecasting.errors import InputError, UserError, rows_hint

TABLE_SUFFIXES = (".parquet", ".csv")
HEAD_BYTES = 1 << 16  # how much of a CSV file is read to judge it
CHUNK_BYTES = 1 << 22  # bytes read at a time when a whole file must be scanned
BOM = codecs.BOM_UTF8  # Excel's "CSV UTF-8" starts with it
UTF8 = "utf-8"


def read_text(path: Path) -> str:
    """A small UTF-8 text file (TOML, JSON), with one-line errors for a missing, unreadable
    or wrongly encoded file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: {_missing(path)}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder; expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; expected a readable file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: {_encoding_hint(path, UTF8, 'TOML and JSON are UTF-8')}"
                         ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding, or a one-line error for an unknown one."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"--encoding expected a text encoding such as utf-8 or gbk; got "
                        f"{encoding!r}") from None


def _missing(path: Path) -> str:
    """Why a path cannot be opened: absent, a dangling symbolic link, or a link loop."""
    if not path.is_symlink():
        return "file not found"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return LOOP
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return LOOP
    return f"a symbolic link to {os.readlink(path)}, which does not exist"


LOOP = "a symbolic link that loops back on itself; expected a file"


HIDDEN = (".", "_")  # _SUCCESS, .crc checksums, _temporary/: not data, to Arrow, Spark, Hive


def table_files(path: Path) -> list[Path]:
    """The files of a table: the file itself, or every file below a partitioned folder as
    Arrow, Spark and Hive read it (names starting with '.' or '_' skipped, at any depth;
    Hive's data files have no suffix), sorted. Every engine and the fingerprint read this
    list, so none sees rows another misses."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(f for f in _walk(path) if f.is_file())


def _walk(root: Path) -> Iterator[Path]:
    """Every entry not a folder below `root`, names starting with '.' or '_' skipped at any
    depth; linked folders followed, as Arrow and Spark follow them (a partition may be a
    link to where it is stored), each at most once on its own path (a link back up the
    tree is not followed round)."""
    ancestors: dict[str, frozenset[str]] = {}
    for top, dirs, files in os.walk(root, onerror=_unlisted, followlinks=True):
        above = ancestors.get(os.path.dirname(top), frozenset())
        if (real := os.path.realpath(top)) in above:
            dirs[:] = []
            continue
        ancestors[top] = above | {real}
        dirs[:] = [d for d in dirs if not d.startswith(HIDDEN)]
        yield from (Path(top, f) for f in files if not f.startswith(HIDDEN))


def _unlisted(exc: OSError) -> None:
    """A folder of a table that cannot be listed is an error, as it is to Arrow: skipped,
    its rows would be missing from one engine's cells and from the fingerprint."""
    raise InputError(f"{exc.filename}: cannot be read ({exc.strerror or exc}); every "
                     "folder of a partitioned table must be readable") from None


def readable(path: Path) -> Path:
    """`path` if it can be opened for reading (a file, or a folder that can be listed);
    otherwise a one-line error saying why (missing, broken link, permission)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {_missing(path)}")
    try:
        if path.is_dir():
            next(os.scandir(path), None)
        else:
            with open(path, "rb"):
                pass
    except PermissionError:
        raise InputError(f"{path}: permission denied; ciplan cannot read it (check the "
                         "file's owner and permissions)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return path


def find_table(directory: Path, name: str) -> Path:
    """Where table `name` of a data directory is: `name.parquet`, `name.csv`, or a folder
    `name/` of hive-partitioned Parquet files (e.g. name/year=2021/region=R07/part-0.parquet)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: data directory not found")
    found = [p for s in TABLE_SUFFIXES
             if (p := directory / f"{name}{s}").exists() or p.is_symlink()]
    if (directory / name).is_dir():
        found.append(directory / name)
    if not found:
        others = sorted(p.name for p in directory.glob(f"{name}.*"))
        hint = f" (found {', '.join(others)}: unknown format)" if others else ""
        raise InputError(f"{directory}: missing {name}.parquet or {name}.csv{hint}")
    if len(found) > 1:
        raise InputError(f"{directory}: both {found[0].name} and {found[1].name}; keep one")
    return readable(found[0])

def read_table(path: Path, columns: list[str] | None = None,
               encoding: str = UTF8) -> pa.Table:
    """Read a CSV or Parquet file into Arrow, with a one-line error for unreadable files.
    `encoding` is the text encoding of CSV files (Parquet text is always UTF-8)."""
    path = readable(path)
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
            table = _read_csv(path, encoding)
        else:
            raise InputError(f"{path}: unknown format {suffix!r}; expected .csv or .parquet")
    except InputError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "UTF8" in reason or isinstance(exc, UnicodeDecodeError):
            raise InputError(f"{path}: {_encoding_hint(path, encoding)}") from None
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


def csv_header(path: Path, encoding: str = UTF8) -> list[str]:
    """The column names of a CSV file, judged from its head: binary content, another
    delimiter or another encoding end here, before anything reads the whole file."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if b"\x00" in head:
        raise InputError(f"{path}: binary content in a .csv file; expected comma-separated text")
    first = head.removeprefix(BOM).split(b"\n", 1)[0]
    if len(first) == len(head.removeprefix(BOM)) and len(head) == HEAD_BYTES:
        raise InputError(f"{path}: no line break in the first {HEAD_BYTES // 1024} KB; "
                         "expected a CSV header line")
    if b"," not in first and any(d in first for d in (b";", b"\t", b"|")):
        raise InputError(f"{path}: the header is not comma-separated; expected ',' as delimiter")
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head.removeprefix(BOM))
    except UnicodeDecodeError:
        raise InputError(f"{path}: {_encoding_hint(path, encoding)}") from None
    return next(csv.reader([text.split("\n", 1)[0].rstrip("\r")]), [])


def _read_csv(path: Path, encoding: str) -> pa.Table:
    # Read every column as text first: type checks happen in the contract with row numbers,
    # so that "12a" in a cost column is reported, never silently turned into NaN.
    header = csv_header(path, encoding)
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True
        ),
    )


# Encodings a Chinese CSV file comes in when it is not UTF-8, tried in this order.
GUESSES = (("gbk", "GBK"), ("gb18030", "GB18030"), ("big5", "Big5"))


def _encoding_hint(path: Path, encoding: str, note: str = "") -> str:
    """Where a text file stops being `encoding` (line number), what it looks like instead,
    and what to do: re-save as UTF-8 or pass --encoding. Reads the file in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                start = chunk.rfind(b"\n", 0, exc.start) + 1  # the offending line
                lines += chunk.count(b"\n", 0, start)
                window = chunk[start:exc.start + 400]
                break
            lines += chunk.count(b"\n")
        else:
            return f"not {encoding} text; re-save it as UTF-8"
    guess = next((label for name, label in GUESSES if _decodes(window, name)), None)
    looks = f"it looks like {guess}" if guess else "its encoding is unknown"
    option = "" if note else f" or pass --encoding {guess.lower() if guess else 'NAME'}"
    extra = f" ({note})" if note else ""
    return (f"line {lines + 1} is not {encoding} text; {looks}: re-save the file as UTF-8"
            f"{option}{extra}")


def _decodes(data: bytes, encoding: str) -> bool:
    """Whether `data` (from a line start, possibly cut mid-character at its end) is
    `encoding` text with at least one character outside ASCII."""
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(data)
    except UnicodeDecodeError:
        return False
    return any(ord(c) > 127 for c in text)


def columns_of(path: Path, encoding: str = UTF8) -> list[str]:
    """Column names of a table (CSV header, Parquet schema, or partitioned folder)."""
    path = readable(path)
    if path.is_dir() or path.suffix == ".parquet":
        try:
            return pads.dataset(path, format="parquet", partitioning="hive").schema.names
        except (pa.ArrowException, OSError):
            return []
    return csv_header(path, encoding)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a frame as Parquet or CSV by the file's suffix (into a folder being published)."""
    path = Path(path)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        raise InputError(f"{path}: unknown format {path.suffix!r}; expected .csv or .parquet")
