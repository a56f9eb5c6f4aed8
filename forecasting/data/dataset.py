"""A data directory read, validated and aggregated: members + claims + scheme -> Dataset."""

from __future__ import annotations

import difflib
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from forecasting.config import ProjectConfig
from forecasting.data.cells import Cells
from forecasting.data.cohorts import CohortSpec, default_keys
from forecasting.data.engines import AUTO, NeedsDetail, Unsupported, engine_names, get_engine
from forecasting.data.io import check_encoding, columns_of, find_table, table_files, write_table
from forecasting.data.options import MAX_COST_LIMIT, DataOptions, Source
from forecasting.data.publish import publish
from forecasting.errors import EngineError, InputError, UserError
from forecasting.scheme.in_force import Scheme, load_scheme, scheme_to_toml

SCHEME_FILE = "scheme.toml"


@dataclass(frozen=True)
class Dataset:
    """Everything a run needs from a data directory, validated."""

    path: Path
    cells: Cells
    scheme: Scheme
    fingerprint: str
    config: ProjectConfig = field(default_factory=ProjectConfig)
    options: DataOptions = field(default_factory=DataOptions)

    @property
    def years(self) -> list[int]:
        return self.cells.years

    @property
    def key(self) -> DataKey:
        """What identifies these data (see DataKey), from the cells."""
        return DataKey(self.path, self.cells.spec, self.fingerprint, self.cells.reported_above,
                       self.cells.rule, self.config, self.options)


@dataclass(frozen=True)
class DataKey:
    """A data directory checked as far as it can be without reading the tables whole
    (options, files, scheme, cohort keys) and fingerprinted, its cells not built: what a
    re-run needs to know whether anything must be computed again. The fingerprint is the
    one `load_data` gives the same directory and options; `reported_above` and `rule` are
    those the cells get."""

    path: Path
    spec: CohortSpec
    fingerprint: str
    reported_above: float
    rule: str
    config: ProjectConfig = field(default_factory=ProjectConfig)
    options: DataOptions = field(default_factory=DataOptions)


def fingerprint(paths: list[Path], extra: str = "") -> str:
    """A short content hash of input files (and settings), tagged on every tracked run."""
    digest = hashlib.blake2b(digest_size=8)
    for path in paths:
        # a partitioned table is its files, each named by its place in the folder
        for file in table_files(path):
            digest.update(str(Path(file).relative_to(Path(path).parent)).encode())
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
    digest.update(extra.encode())
    return digest.hexdigest()


def cohort_spec(members_path: Path, spec: CohortSpec | None, encoding: str = "utf-8"
                ) -> CohortSpec:
    """The cohorts to build: `spec`, or L city's keys the members table has; every key
    must be a column of the members table (a near miss is named)."""
    names = columns_of(members_path, encoding)
    if spec is None or spec.keys is None:
        return replace(spec or CohortSpec(), keys=default_keys(names))
    missing = [k for k in spec.keys if k not in names]
    if missing and names:
        close = difflib.get_close_matches(missing[0], names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"{members_path}: cohort key {missing[0]!r} is not a column{hint} "
                         f"(columns: {', '.join(names)})")
    return spec


def load_data(directory: Path, options: DataOptions | None = None,
              config: ProjectConfig | None = None) -> Dataset:
    """Read members, claims and (when present) scheme.toml from `directory`, check the
    contract, build cells with the engine the options name (see DataOptions). A scheme is
    needed to price plans (history, backtest payouts, optimisation), not to forecast.
    `config` (the project configuration) travels with the Dataset to the models."""
    options = options or DataOptions()
    directory = Path(directory)
    source, spec, scheme, inputs = _checked(directory, options)
    # Hashing the files runs in a thread while the data are checked and aggregated.
    with ThreadPoolExecutor(max_workers=1) as pool:
        fp = pool.submit(fingerprint, inputs, options.fingerprint_text(spec))
        cells = build_cells(source, options).coarsened(spec)
        return Dataset(directory, cells, scheme, fp.result(), config or ProjectConfig(),
                       options)


def data_key(directory: Path, options: DataOptions | None = None,
             config: ProjectConfig | None = None) -> DataKey:
    """The DataKey of `directory` read with `options`: the checks `load_data` makes before
    reading the tables, and the same fingerprint, in the time it takes to hash the files
    (a re-run with nothing changed need not build the cells)."""
    options = options or DataOptions()
    directory = Path(directory)
    _, spec, _, inputs = _checked(directory, options)
    # the threshold as the cells hold it (a float: the train config hashes its repr)
    return DataKey(directory, spec, fingerprint(inputs, options.fingerprint_text(spec)),
                   float(options.reported_above), options.threshold_rule,
                   config or ProjectConfig(), options)


def _checked(directory: Path, options: DataOptions
             ) -> tuple[Source, CohortSpec, Scheme, list[Path]]:
    """The checks before the tables are read (options, files, cohort keys, scheme): what
    the engines aggregate (at single years of age), the cohorts, the scheme and the files
    the fingerprint hashes."""
    if options.engine not in engine_names():
        raise EngineError(f"engine must be one of {', '.join(engine_names())}; "
                          f"got {options.engine!r}")
    check_encoding(options.encoding)
    if not 0 < options.max_cost <= MAX_COST_LIMIT:
        raise UserError(f"--max-cost expected a cost in (0, {MAX_COST_LIMIT:g}]; got "
                        f"{options.max_cost:g}")
    scheme_path = directory / SCHEME_FILE
    members_path = find_table(directory, "members")
    spec = cohort_spec(members_path, options.spec, options.encoding)
    if options.severity_summary and "special_group" not in spec.keys:
        raise InputError("a severity summary needs special_group among the cohort keys")
    claims_path = find_table(directory, "claims")
    scheme = load_scheme(scheme_path) if scheme_path.exists() else Scheme({}, {})
    inputs = [members_path, claims_path, *([scheme_path] if scheme_path.exists() else [])]
    # the engines aggregate at single years of age; the bands are summed from those cells
    return Source(members_path, claims_path, spec.fine()), spec, scheme, inputs


def build_cells(source: Source, options: DataOptions) -> Cells:
    """Cells from the engine the options name. "auto" takes DuckDB for Parquet and pandas
    otherwise. When an SQL engine counts an offence, cannot read the data or fails, the
    pandas engine reads the files to name the offending rows; if it finds none, "auto"
    takes its cells (it checked everything), and an explicitly chosen engine is an error
    that says what went wrong: another engine never computes silently in its place."""
    requested = options.engine
    name = requested if requested != AUTO else ("duckdb" if source.parquet else "pandas")
    engine, pandas = get_engine(name), get_engine("pandas")
    if engine is pandas:
        return pandas.cells(source, options)
    try:
        return engine.cells(source, options)
    except (NeedsDetail, Unsupported) as exc:
        problem = str(exc)
    except engine.failures as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    cells = pandas.cells(source, options)  # raises InputError naming file, column and rows
    if requested == AUTO:
        return cells
    raise EngineError(f"{source.members.parent}: the {name} engine could not aggregate these "
                      f"data ({problem}); the pandas engine reads them: use --engine pandas")


def write_data_dir(
    out: Path,
    members: pd.DataFrame,
    claims: pd.DataFrame,
    scheme: Scheme | None,
    fmt: str = "parquet",
    extra: dict[str, dict] | None = None,
    inputs: dict | None = None,
) -> Path:
    """Write a data directory (members, claims, scheme.toml unless `scheme` is None, extra
    JSON files), published whole with a manifest naming `inputs` (e.g. the simulation's
    seed and scale)."""
    if fmt not in ("parquet", "csv"):
        raise InputError(f"format must be parquet or csv; got {fmt!r}")
    out = Path(out)
    with publish(out, "data", inputs or {}) as tmp:
        write_table(members, tmp / f"members.{fmt}")
        write_table(claims, tmp / f"claims.{fmt}")
        if scheme is not None:
            (tmp / SCHEME_FILE).write_text(scheme_to_toml(scheme), encoding="utf-8")
        for name, content in (extra or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=2, default=float), encoding="utf-8")
    return out
