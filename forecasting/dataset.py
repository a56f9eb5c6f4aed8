"""A data directory read, validated and aggregated: members + claims + scheme -> Dataset."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from forecasting.aggregation import NeedsDetail
from forecasting.cells import Cells, aggregate, annual_costs, claimant_columns
from forecasting.cohorts import CohortSpec
from forecasting.contract import validate_claims, validate_members
from forecasting.engine_duckdb import cells_from_parquet
from forecasting.errors import InputError
from forecasting.io import (
    atomic_dir,
    columns_of,
    find_table,
    read_table,
    where,
    write_table,
)
from forecasting.scheme import Scheme, load_scheme, scheme_to_toml
from forecasting.summary import SeveritySummary

SCHEME_FILE = "scheme.toml"


@dataclass(frozen=True)
class Dataset:
    """Everything a run needs from a data directory, validated."""

    path: Path
    cells: Cells
    scheme: Scheme
    fingerprint: str

    @property
    def years(self) -> list[int]:
        return self.cells.years


def fingerprint(paths: list[Path], extra: str = "") -> str:
    """A short content hash of input files (and settings), tagged on every tracked run."""
    digest = hashlib.blake2b(digest_size=8)
    for path in paths:
        # a partitioned table is its files, each named by its place in the folder
        files = sorted(Path(path).rglob("*.parquet")) if Path(path).is_dir() else [path]
        for file in files:
            digest.update(str(Path(file).relative_to(Path(path).parent)).encode())
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
    digest.update(extra.encode())
    return digest.hexdigest()


ENGINES = ("auto", "pandas", "duckdb", "spark")


def load_data(
    directory: Path,
    spec: CohortSpec | None = None,
    reported_above: float = 0.0,
    engine: str = "auto",
    spark_master: str = "local[2]",
    severity_summary: bool = False,
) -> Dataset:
    """Read members, claims and scheme from `directory`, check the contract, build cells.

    reported_above: the claims hold only member-years whose annual eligible cost exceeds
    this (CNY); claimants are then left-truncated there and the models must know it.
    engine: "duckdb" (default for Parquet: parallel, out of core), "pandas" (any file) or
    "spark" (Parquet on a Spark cluster at `spark_master`).
    severity_summary: claimants' costs come as a log-bucket summary per cohort instead of
    one row each (SQL engines send only the summary; exact sums, costs within 1.2 %).
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    if severity_summary and spec is not None and "special_group" not in spec.keys:
        raise InputError("a severity summary needs special_group among the cohort keys")
    directory = Path(directory)
    scheme_path = directory / SCHEME_FILE
    members_path = find_table(directory, "members")
    if spec is None:  # several cities in one data set: each region is a cohort key
        spec = CohortSpec(keys=("sex", "residence", "special_group", "region")
                          if "region" in columns_of(members_path) else
                          ("sex", "residence", "special_group"))
    claims_path = find_table(directory, "claims")
    scheme = load_scheme(scheme_path)
    if engine in ("duckdb", "spark") and members_path.suffix == ".csv":
        raise InputError(f"{directory}: the {engine} engine reads Parquet; got CSV files")
    # Hashing the files runs in a thread while the data are checked and aggregated.
    with ThreadPoolExecutor(max_workers=1) as pool:
        fp = pool.submit(fingerprint, [members_path, claims_path, scheme_path],
                         f"{spec}|{reported_above}" + ("|summary" if severity_summary else ""))
        cells = _cells(members_path, claims_path, scheme, spec, reported_above, engine,
                       spark_master, severity_summary)
        return Dataset(directory, cells, scheme, fp.result())


def _cells(members_path: Path, claims_path: Path, scheme: Scheme, spec: CohortSpec,
           reported_above: float, engine: str, spark_master: str, summary: bool) -> Cells:
    parquet = ".csv" not in (members_path.suffix, claims_path.suffix)
    args = (members_path, claims_path, spec, reported_above, sorted(scheme.plans))
    if engine == "spark":
        from forecasting.engine_spark import cells_from_spark

        try:
            return cells_from_spark(*args, master=spark_master, summary=summary)
        except NeedsDetail:
            pass  # the pandas engine below finds the offending rows and says which
    elif engine in ("auto", "duckdb") and parquet:
        try:
            return cells_from_parquet(*args, summary=summary)
        except (NeedsDetail, duckdb.Error, pa.ArrowException, OSError):
            pass  # the pandas engine below finds the offending rows and says which
    members = validate_members(members_path, read_table(members_path))
    claims = validate_claims(
        claims_path, read_table(claims_path, ["member_id", "year", "eligible_cost", "paid"])
    )
    scheme_path = members_path.parent / SCHEME_FILE
    _check_years(scheme_path, members_path, members["year"].to_numpy(), scheme)
    _check_years(scheme_path, claims_path, claims["year"].to_numpy(), scheme)
    annual = annual_costs(members, claims, members_path, claims_path)
    if reported_above > 0:
        low = np.flatnonzero((annual > 0) & (annual <= reported_above))
        if low.size:
            raise InputError(
                f"{claims_path}: column 'eligible_cost': expected annual totals > "
                f"reported_above {reported_above:g} CNY; got {annual[low[0]]:g} for the "
                f"member-years at {where(members_path, low)}"
            )
    cells = aggregate(members, annual, spec, reported_above)
    return summarised(cells) if summary else cells


def summarised(cells: Cells) -> Cells:
    """Cells whose claimants are rebuilt from their log-bucket summary, as the SQL engines
    send them with severity_summary: every engine then gives the models the same rows."""
    keys = ["year", *cells.spec.columns]
    found = SeveritySummary.from_claimants(cells.claimants, keys)
    claimants = found.claimants(cells.spec.band_width)[claimant_columns(cells.spec)]
    return replace(cells, claimants=claimants)


def _check_years(scheme_path: Path, path: Path, years: np.ndarray, scheme: Scheme) -> None:
    unknown = sorted(set(np.unique(years).tolist()) - set(scheme.plans))
    if unknown:
        rows = np.flatnonzero(np.isin(years, unknown))
        raise InputError(
            f"{where(path, rows, 'column ' + repr('year'))}: expected a year with a plan in "
            f"{scheme_path} ({', '.join(map(str, sorted(scheme.plans)))}); got {unknown[0]}"
        )


def write_data_dir(
    out: Path,
    members: pd.DataFrame,
    claims: pd.DataFrame,
    scheme: Scheme,
    fmt: str = "parquet",
    extra: dict[str, dict] | None = None,
) -> Path:
    """Write a data directory (members, claims, scheme.toml, extra JSON files) atomically."""
    if fmt not in ("parquet", "csv"):
        raise InputError(f"format must be parquet or csv; got {fmt!r}")
    out = Path(out)
    with atomic_dir(out) as tmp:
        write_table(members, tmp / f"members.{fmt}")
        write_table(claims, tmp / f"claims.{fmt}")
        (tmp / SCHEME_FILE).write_text(scheme_to_toml(scheme), encoding="utf-8")
        for name, content in (extra or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=2, default=float), encoding="utf-8")
    return out
