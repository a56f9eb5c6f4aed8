"""How to load a data directory: one options object, built once (by the CLI from one
shared option group) and passed whole to `load_data` and to the engines."""

from __future__ import annotations

import codecs
import datetime
from dataclasses import dataclass
from pathlib import Path

from forecasting.data.cells import THRESHOLD_RULES
from forecasting.data.cohorts import CohortSpec
from forecasting.errors import InputError

# The largest believable cost of one claim or one member-year, in money units of the data:
# a billion (CNY) is far above any real annual medical cost, and any count of costs under
# it sums without overflow. Data in a currency of small units may raise it (--max-cost),
# up to MAX_COST_LIMIT.
MAX_COST = 1e9
MAX_COST_LIMIT = 1e15


@dataclass(frozen=True)
class DataOptions:
    """Options for reading members and claims.

    reported_above: claims hold only member-years whose annual eligible cost reaches this
        threshold (money units of the data); claimants are left-truncated there.
    threshold_rule: "above" (costs > reported_above are reported) or "at-or-above"
        (costs >= reported_above are, as "reported at or above T" data come).
    engine: a name of `forecasting.data.engines.ENGINES` or "auto" (DuckDB for Parquet,
        pandas for CSV).
    severity_summary: claimants' costs come as log-bucket counts and sums per cohort
        instead of one row each (exact sums, costs within 1.2 %).
    spark_master: the Spark master URL, for the spark engine.
    memory_limit: DuckDB's memory limit (e.g. "4GB"), for the duckdb engine.
    threads: DuckDB's threads (None: as many as the machine has cores), for the duckdb
        engine: `ciplan train` leaves a core to the helper that imports MLflow meanwhile.
    spec: the cohorts; None = age band x those of sex, residence, special group and region
        the members table has (forecasting.data.cohorts.default_keys).
    encoding: the text encoding of CSV files (Excel's "CSV UTF-8" byte-order mark is
        accepted; e.g. "gbk" for files saved by Chinese Windows).
    max_cost: a claim's cost or a member-year's annual cost above this (money units of
        the data) is refused as absurd, on every engine.
    as_of: read the data as known on this date: claims settled by then, years up to its
        own (the pandas engine reads it; `auto` takes it).
    """

    reported_above: float = 0.0
    threshold_rule: str = "above"
    engine: str = "auto"
    severity_summary: bool = False
    spark_master: str = "local[2]"
    memory_limit: str | None = None
    threads: int | None = None
    spec: CohortSpec | None = None
    encoding: str = "utf-8"
    max_cost: float = MAX_COST
    as_of: datetime.date | None = None

    def __post_init__(self) -> None:
        if self.threshold_rule not in THRESHOLD_RULES:
            raise InputError(f"threshold rule must be one of {', '.join(THRESHOLD_RULES)}; "
                             f"got {self.threshold_rule!r}")
        if not self.reported_above >= 0:
            raise InputError(f"reported_above must be >= 0; got {self.reported_above:g}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be at least 1; got {self.threads}")

    @property
    def codec(self) -> str:
        """The encoding's codec name ("UTF8" and "utf-8" are one codec, one fingerprint);
        an unknown name as given (reading refuses it)."""
        try:
            return codecs.lookup(self.encoding).name
        except LookupError:
            return self.encoding

    def fingerprint_text(self, spec: CohortSpec) -> str:
        """The settings that change the cells, for the data fingerprint."""
        # the encoding decides what the same bytes say (GBK read as Latin-1 reads, wrongly);
        # the default is left out so that fingerprints of UTF-8 data stay what they were
        return (f"{spec}|{self.reported_above}|{self.threshold_rule}|as_of={self.as_of}"
                + ("|summary" if self.severity_summary else "")
                + ("" if self.codec == "utf-8" else f"|encoding={self.codec}"))


@dataclass(frozen=True)
class Source:
    """The files of one data directory an engine aggregates, and the cohorts it groups by."""

    members: Path
    claims: Path
    spec: CohortSpec

    @property
    def parquet(self) -> bool:
        """Both tables are Parquet (files or partitioned folders)."""
        return ".csv" not in (self.members.suffix, self.claims.suffix)
