"""`ciplan import` and `ciplan simulate --format settlements`: settlement records of the
national platform and an enrolment roster in, a ciplan data directory out (and back)."""

from __future__ import annotations

from pathlib import Path

from forecasting.data.dataset import SCHEME_FILE, write_data_dir
from forecasting.data.publish import publish
from forecasting.data.settlements import (
    Imported,
    import_settlements,
    load_mapping,
    to_settlement_records,
)
from forecasting.scheme.in_force import load_scheme, scheme_to_toml
from forecasting.simulate import City

RECORDS_FILE, ROSTER_FILE = "records.csv", "roster.csv"


def import_records(records: Path, roster: Path, out: Path, mapping: Path | None = None,
                   scheme: Path | None = None, fmt: str = "parquet") -> Imported:
    """Import settlement records and a roster into the data directory `out` (with the
    scheme, when given, and import_report.json: what was read and every row left out)."""
    found = import_settlements(records, roster, load_mapping(mapping))
    report = {"said": found.said, "rejected_rows": found.rejected,
              "members": len(found.members), "claims": len(found.claims)}
    write_data_dir(out, found.members, found.claims,
                   None if scheme is None else load_scheme(scheme), fmt,
                   {"import_report.json": report},
                   {"imported": {"records": str(records), "roster": str(roster),
                                 "mapping": str(mapping or "default")}})
    return found


def write_settlement_records(city: City, out: Path, seed: int = 0) -> Path:
    """A simulated city as the platform exports it: records.csv and roster.csv in GBK with
    Chinese headers (reversals included), scheme.toml and truth.json."""
    import json

    records, roster = to_settlement_records(city.members, city.claims, seed)
    with publish(Path(out), "settlements", {"seed": city.truth.seed,
                                            "scale": city.truth.scale}) as tmp:
        records.to_csv(tmp / RECORDS_FILE, index=False, encoding="gbk")
        roster.to_csv(tmp / ROSTER_FILE, index=False, encoding="gbk")
        (tmp / SCHEME_FILE).write_text(scheme_to_toml(city.scheme), encoding="utf-8")
        (tmp / "truth.json").write_text(json.dumps(city.truth_dict(), indent=2, default=float),
                                        encoding="utf-8")
    return Path(out)
