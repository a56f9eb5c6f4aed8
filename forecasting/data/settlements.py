"""Settlement records of the national medical security information platform (the 2207
settlement output, 结算信息) and an enrolment roster, turned into ciplan's members and
claims (DESIGN §7).

A mapping (TOML; the default ships in forecasting/data/defaults/settlements.toml) names the
columns each field may have — the platform's codes or Chinese headers — the 大病 eligible
cost rule (fields joined by + and -, default `inscp_scp_amt - hifp_pay`), what the plan in
force paid (`hifmi_pay`), and the codes of sex, residence and the special groups. Reversed
settlements (negative rows with the same settlement id) are netted; every row that cannot
be used is counted and named with its reason, none is dropped silently. CSV (UTF-8 or GBK,
detected and said), Parquet and XLSX are read.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.data.io import read_text, readable
from forecasting.errors import InputError, rows_hint

RECORD_FIELDS = ("psn_no", "setl_time", "service_date", "inscp_scp_amt", "hifp_pay",
                 "hifmi_pay")
ROSTER_FIELDS = ("psn_no", "year", "gend", "brdy")


@dataclass(frozen=True)
class Mapping:
    """Column names per field, the cost rules and the codes (see module doc)."""

    records: dict[str, list[str]]
    roster: dict[str, list[str]]
    eligible_cost: str
    paid: str
    sex: dict[str, str]
    residence: dict[str, str]
    special_psn_types: frozenset[str]
    source: str = "default"
    date_order: str | None = None  # "dmy" or "mdy": dates like 05/03/2021 no value settles


def load_mapping(path: Path | None = None) -> Mapping:
    """The mapping of `path`, or the default shipped with ciplan."""
    if path is None:
        text, source = resources.files("forecasting.data.defaults").joinpath(
            "settlements.toml").read_text(encoding="utf-8"), "default"
    else:
        text, source = read_text(path), str(path)
    try:
        doc = tomllib.loads(text)
        codes = doc["codes"]
        for rule in (doc["rules"]["eligible_cost"], doc["rules"].get("paid", "hifmi_pay")):
            _rule(rule, source)
        order = doc["rules"].get("date_order")
        if order is not None and order not in DATE_ORDERS:
            raise InputError(f"{source}: [rules] date_order: expected \"dmy\" (day first) "
                             f"or \"mdy\" (month first); got {order!r}")
        return Mapping({k: list(v) for k, v in doc["records"].items()},
                       {k: list(v) for k, v in doc["roster"].items()},
                       doc["rules"]["eligible_cost"], doc["rules"].get("paid", "hifmi_pay"),
                       {str(k): v for k, v in codes["sex"].items()},
                       {str(k): v for k, v in codes.get("residence", {}).items()},
                       frozenset(str(c) for c in codes.get("special_psn_types", [])), source,
                       order)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{source}: expected [records], [roster], [rules] eligible_cost and "
                         f"[codes.sex] tables; missing or wrong {exc}") from None


def read_any(path: Path) -> tuple[pd.DataFrame, str]:
    """A CSV (UTF-8 or GBK, detected), Parquet or XLSX file as text columns, and what
    was read ("UTF-8", "GBK", "Parquet", "XLSX")."""
    path = readable(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return _tidy(pd.read_parquet(path).astype("string")), "Parquet"
        if suffix in (".xlsx", ".xlsm"):
            return _tidy(pd.read_excel(path, dtype=str).astype("string")), "XLSX"
        if suffix == ".csv":
            raw = path.read_bytes()
            for codec, name in (("utf-8-sig", "UTF-8"), ("gb18030", "GBK")):
                try:
                    raw.decode(codec)
                except UnicodeDecodeError:
                    continue
                return _tidy(_read_csv(path, codec)), name
            raise InputError(f"{path}: neither UTF-8 nor GBK text; re-save it as UTF-8")
    except InputError:
        raise
    except (ValueError, OSError, ImportError) as exc:
        raise InputError(f"{path}: not a readable {suffix[1:]} file "
                         f"({str(exc).splitlines()[0]})") from None
    raise InputError(f"{path}: unknown format {suffix!r}; expected .csv, .parquet or .xlsx")


def _read_csv(path: Path, codec: str) -> pd.DataFrame:
    """A CSV as text, every row no longer than the header. (Read with the header as a
    row: pandas otherwise takes a first row with one field too many, as an unquoted
    1,234.50 makes it, for an index and shifts every column by one.)"""
    try:
        rows = pd.read_csv(path, dtype=str, encoding=codec, keep_default_na=False,
                           header=None)
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if not found:
            raise
        width, line, saw = found.groups()
        raise InputError(f"{path}: line {line} has {saw} fields, the header {width}; expected "
                         "a value holding a comma (1,234.50) in quotes") from None
    if rows.empty:
        return pd.DataFrame(dtype="string")
    header = [str(c) if str(c).strip() else f"Unnamed: {i}"
              for i, c in enumerate(rows.iloc[0].fillna(""))]
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise InputError(f"{path}: column {twice[0]!r} appears more than once in the "
                         "header; expected each column once")
    frame = rows.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame.astype("string")


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Headers without surrounding spaces; empty rows at the end (,,,, as spreadsheets
    export them) dropped: they are no records (rows before them keep their numbers)."""
    frame.columns = [str(c).strip().lstrip("\ufeff").strip() for c in frame.columns]
    blank = frame.fillna("").apply(lambda c: c.str.strip().eq("")).all(axis=1).to_numpy()
    last = len(blank) - int(np.argmin(blank[::-1])) if not blank.all() else 0
    return frame.iloc[:last]


def _columns(frame: pd.DataFrame, names: dict[str, list[str]], needed, path: Path
             ) -> dict[str, str]:
    """field -> the frame's column for it; one-line error naming a missing needed field."""
    found = {}
    for name, options in names.items():
        hit = next((c for c in options if c in frame.columns), None)
        if hit is not None:
            found[name] = hit
    missing = [f for f in needed if f not in found]
    if missing:
        raise InputError(f"{path}: no column for {missing[0]!r}; expected one of "
                         f"{names.get(missing[0], [missing[0]])} (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    return found


def _rule(text: str, source: str = "mapping") -> list[tuple[float, str]]:
    """'a - b + c' -> [(1, a), (-1, b), (1, c)]: fields and signs only, never evaluated."""
    tokens = re.split(r"\s*([+-])\s*", str(text).strip())
    if not tokens or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t)
                             for t in tokens[::2]):
        raise InputError(f"{source}: rule {text!r}: expected record fields joined by "
                         "+ and -")
    signs = [1.0] + [1.0 if s == "+" else -1.0 for s in tokens[1::2]]
    return list(zip(signs, tokens[::2], strict=True))


@dataclass
class Rejected:
    """Rows that could not be used, by file and reason (0-based data rows)."""

    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, path: Path, reason: str, rows) -> None:
        rows = [int(r) for r in np.asarray(rows).ravel()]
        if rows:
            self.rows.setdefault((str(path), reason), []).extend(rows)

    def lines(self) -> list[str]:
        return [f"{path}: {len(rows)} row{'s' if len(rows) > 1 else ''} {reason} "
                f"({rows_hint(sorted(rows))})" for (path, reason), rows in self.rows.items()]

    @property
    def count(self) -> int:
        """Rows left out, each once (a row may fail for several reasons)."""
        return len({(path, r) for (path, _), rows in self.rows.items() for r in rows})


# money as exports write it: 1,234.50 (thousands separators, only where well formed),
# full-width digits and points (NFKC), a unit (元, ¥ / full-width yen) before or after
_THOUSANDS = r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"
_UNIT = r"^\s*[¥]\s*|\s*元\s*$"


def _money_text(values: pd.Series) -> pd.Series:
    text = values.map(lambda v: unicodedata.normalize("NFKC", v), na_action="ignore")
    text = text.str.replace(_UNIT, "", regex=True).str.strip()
    grouped = text.str.fullmatch(_THOUSANDS).fillna(False).astype(bool)
    return text.where(~grouped, text.str.replace(",", "", regex=False))


def _number(frame: pd.DataFrame, col: str, path: Path, rejected: Rejected) -> np.ndarray:
    values = pd.to_numeric(_money_text(frame[col]), errors="coerce").to_numpy(dtype="float64")
    rejected.add(path, f"with a non-numeric {col!r}", np.flatnonzero(np.isnan(values)))
    return values


# a date with the year last (05/03/2021, 5.3.2021, 05-03-2021 10:00): day and month in an
# order the column decides; the year first (2021-03-05, 2021/3/5, 20210305) reads as written
_YEAR_LAST = r"^(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})(?=$|[\sT])"
_SHORT_YEAR = r"^\d{1,2}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{2}(?=$|[\sT])"
DATE_ORDERS = {"dmy": "day first", "mdy": "month first"}


def _date_order(first: pd.Series, second: pd.Series, path: Path, col: str,
                order: str | None, text: pd.Series) -> str | None:
    """"dmy" or "mdy" for a column of year-last dates: what its values settle (a first
    number above 12 is a day, a second one above 12 is), else the mapping's `order`. A
    column that reads both ways, contradicts the mapping, or is ambiguous with no order
    set is refused in one line."""
    def example(rows: pd.Index) -> str:
        return f"{rows_hint(rows)} ({text[rows[0]]})"

    # a date whose both numbers exceed 12 (13/14/2021) is no date in either order: it
    # settles nothing, and is left to be rejected as unreadable, row by row
    day_first = first.index[(first > 12) & (second <= 12)]
    month_first = second.index[(second > 12) & (first <= 12)]
    if len(day_first) and len(month_first):
        raise InputError(f"{path}: column {col!r}: expected one order of day and month in a "
                         f"column; got day first on {example(day_first)} and month first on "
                         f"{example(month_first)}")
    found = "dmy" if len(day_first) else "mdy" if len(month_first) else None
    if found and order and found != order:
        rows = day_first if len(day_first) else month_first
        raise InputError(f"{path}: column {col!r}, {example(rows)}: expected dates "
                         f"{DATE_ORDERS[order]} (the mapping's date_order = {order!r}); got "
                         f"dates {DATE_ORDERS[found]}")
    ambiguous = first.index[(first != second) & (first <= 12) & (second <= 12)]
    if found or order or not len(ambiguous):
        return found or order
    raise InputError(f"{path}: column {col!r}, {example(ambiguous)}: expected dates whose "
                     "order of day and month is known; none of the column's dates settles it: "
                     'set date_order = "dmy" (day first) or "mdy" (month first) under [rules] '
                     "in the mapping (--mapping)")


def _dates(frame: pd.DataFrame, col: str, path: Path, rejected: Rejected,
           order: str | None = None) -> pd.Series:
    """The column as dates. Chinese exports write 2021年3月5日 too: the same date, read the
    same. The order of day and month in year-last dates is one for the whole column
    (_date_order), never guessed date by date."""
    text = frame[col].str.strip().str.replace(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})"
                                              r"\s*日", r"\1-\2-\3", regex=True)
    parts = text.str.extract(_YEAR_LAST).dropna()
    if len(parts):
        first, second = parts[0].astype("int64"), parts[1].astype("int64")
        order = _date_order(first, second, path, col, order, text)
        month, day = (second, first) if order == "dmy" else (first, second)
        iso = parts[2] + "-" + month.astype(str) + "-" + day.astype(str)
        text = text.copy()
        text[parts.index] = iso + text[parts.index].str.replace(_YEAR_LAST, "", regex=True)
    # 05/03/21: which number is the year is a guess too; unreadable, and named
    text = text.mask(text.str.contains(_SHORT_YEAR, regex=True, na=False), "")
    dates = pd.to_datetime(text, errors="coerce", format="mixed")
    rejected.add(path, f"with an unreadable date in {col!r}", np.flatnonzero(dates.isna()))
    return dates


@dataclass(frozen=True)
class Imported:
    """members and claims as ciplan reads them, and what the import said."""

    members: pd.DataFrame
    claims: pd.DataFrame
    said: list[str]
    rejected: int


def import_settlements(records_path: Path, roster_path: Path,
                       mapping: Mapping | None = None) -> Imported:
    """Members (from the roster) and claims (from the settlement records); see module doc."""
    mapping = mapping or load_mapping()
    rejected = Rejected()
    roster, roster_kind = read_any(roster_path)
    records, records_kind = read_any(records_path)
    said = [f"{roster_path}: read as {roster_kind}", f"{records_path}: read as {records_kind}",
            f"mapping: {mapping.source}; eligible cost = {mapping.eligible_cost}"]
    members = _members(roster, roster_path, mapping, rejected)
    _not_all_left_out(roster, members, roster_path, rejected)
    claims = _claims(records, records_path, mapping, members, rejected)
    _not_all_left_out(records, claims, records_path, rejected)
    said += rejected.lines()
    return Imported(members, claims, said, rejected.count)


def _not_all_left_out(read: pd.DataFrame, kept: pd.DataFrame, path: Path,
                      rejected: Rejected) -> None:
    """A file of which every row is left out is refused, naming the commonest reason: it
    is the file's form the mapping does not read (ids written otherwise in the roster,
    amounts or dates in another style), not bad rows; a data directory without claims
    or members would mislead every later command."""
    if len(read) == 0 or len(kept) > 0:
        return
    reasons = [(len(rows), reason, rows) for (where, reason), rows in rejected.rows.items()
               if where == str(path)]
    why = "for no reason named"
    if reasons:
        n, reason, rows = max(reasons, key=lambda r: r[0])
        why = f"{n:,} {reason} ({rows_hint(sorted(rows))})"
    raise InputError(f"{path}: all {len(read):,} rows left out, {why}; expected rows "
                     "the mapping reads (see --mapping)")


def _members(roster: pd.DataFrame, path: Path, mapping: Mapping, rejected: Rejected
             ) -> pd.DataFrame:
    cols = _columns(roster, mapping.roster, ROSTER_FIELDS, path)
    # 参保年度 as 2021, 2021年 or 2021年度
    roster = roster.assign(**{cols["year"]: roster[cols["year"]].str.replace(
        r"\s*年度?\s*$", "", regex=True)})
    year = _number(roster, cols["year"], path, rejected)
    birth = _dates(roster, cols["brdy"], path, rejected, mapping.date_order)
    sex = roster[cols["gend"]].str.strip().map(mapping.sex)
    rejected.add(path, f"with a sex code not in the mapping ({cols['gend']!r})",
                 np.flatnonzero(sex.isna().to_numpy()))
    out = pd.DataFrame({"member_id": roster[cols["psn_no"]].str.strip(), "year": year,
                        "age": year - birth.dt.year.to_numpy(dtype="float64"), "sex": sex})
    if "residence" in cols:
        out["residence"] = roster[cols["residence"]].str.strip().map(mapping.residence)
        rejected.add(path, f"with a residence code not in the mapping "
                     f"({cols['residence']!r})", np.flatnonzero(out["residence"].isna()))
    psn_type = roster[cols["psn_type"]].str.strip() if "psn_type" in cols else None
    out["special_group"] = (psn_type.isin(mapping.special_psn_types).to_numpy()
                            if psn_type is not None else False)
    out["exposure"] = (_number(roster, cols["exposure"], path, rejected)
                       if "exposure" in cols else 1.0)
    bad = out.isna().any(axis=1).to_numpy()
    out = out[~bad].copy()
    # a roster exported twice: the copies left out and named; two different rows for one
    # person and year cannot both stand (the data directory would be refused on reading)
    copy = out.duplicated(keep="first").to_numpy()
    rejected.add(path, "exported twice (a copy of another roster row; counted once)",
                 out.index[copy])
    out = out[~copy]
    clash = out.duplicated(["member_id", "year"], keep=False).to_numpy()
    if clash.any():
        first = out[clash].iloc[0]
        raise InputError(f"{path}: columns {cols['psn_no']!r}, {cols['year']!r}, "
                         f"{rows_hint(out.index[clash])}: expected one row per person and "
                         f"year; got {first['member_id']} in {int(first['year'])} on rows "
                         "that differ")
    out["year"] = out["year"].astype("int64")
    out["age"] = out["age"].astype("int64")
    return out.reset_index(drop=True)


def _claims(records: pd.DataFrame, path: Path, mapping: Mapping, members: pd.DataFrame,
            rejected: Rejected) -> pd.DataFrame:
    rule, paid_rule = _rule(mapping.eligible_cost), _rule(mapping.paid)
    fields = {f for _, f in rule + paid_rule}
    needed = ("psn_no", "setl_time", "service_date", *sorted(fields))
    cols = _columns(records, mapping.records, needed, path)
    amounts = {f: _number(records, cols[f], path, rejected) for f in fields}
    cost = sum(sign * amounts[f] for sign, f in rule)
    paid = sum(sign * amounts[f] for sign, f in paid_rule)
    service = _dates(records, cols["service_date"], path, rejected, mapping.date_order)
    settled = _dates(records, cols["setl_time"], path, rejected, mapping.date_order)
    frame = pd.DataFrame({"row": np.arange(len(records)),
                          "member_id": records[cols["psn_no"]].str.strip(),
                          "setl_id": (records[cols["setl_id"]].str.strip() if "setl_id" in cols
                                      else pd.Series(np.arange(len(records))).astype(str)),
                          "service": service, "settled": settled,
                          "eligible_cost": cost, "paid": paid})
    frame = frame[~frame.isna().any(axis=1)]
    early = frame["settled"].dt.normalize() < frame["service"].dt.normalize()
    rejected.add(path, f"settled before the care began ({cols['setl_time']!r} before "
                 f"{cols['service_date']!r})", frame.loc[early, "row"])
    frame = frame[~early]
    frame = _without_double_exports(frame, path, rejected)
    # reversals: rows of one settlement id add up (a reversal cancels, a re-settlement
    # replaces); what is left is the settlement as it stands, dated when it was first
    # settled (a refund or correction months later does not make the bill unknown until
    # then, nor its settlement lag longer)
    net = frame.groupby(["member_id", "setl_id"], as_index=False, sort=False).agg(
        row=("row", "min"), service=("service", "min"), settled=("settled", "min"),
        eligible_cost=("eligible_cost", "sum"), paid=("paid", "sum"))
    net = net[(net["eligible_cost"].abs() > 1e-9) | (net["paid"].abs() > 1e-9)]
    negative = net["eligible_cost"] < -1e-9
    rejected.add(path, "whose settlement nets to a negative eligible cost",
                 net.loc[negative, "row"])
    net = net[~negative]
    net["year"] = net["service"].dt.year.astype("int64")
    known = net.set_index(["member_id", "year"]).index.isin(
        members.set_index(["member_id", "year"]).index)
    rejected.add(path, "of a person not on the roster in that year", net.loc[~known, "row"])
    net = net[known]
    return pd.DataFrame({"member_id": net["member_id"].to_numpy(), "year": net["year"],
                         "eligible_cost": np.round(net["eligible_cost"].to_numpy(), 2),
                         "paid": np.round(net["paid"].to_numpy(), 2),
                         "service_date": net["service"].dt.date.to_numpy(),
                         "settlement_date": net["settled"].dt.date.to_numpy()}
                        ).reset_index(drop=True)


def _without_double_exports(frame: pd.DataFrame, path: Path, rejected: Rejected
                            ) -> pd.DataFrame:
    """The rows of `frame` less the copies of a settlement exported twice: a positive row
    identical to another of its settlement id (dates and amounts) is a re-settlement only
    when a reversal (a row of the exact opposite amounts) stands between them; copies
    beyond one plus the reversals are left out and named (summed, they counted the bill
    twice)."""
    ids = ["member_id", "setl_id"]
    amounts = frame[["eligible_cost", "paid"]].round(2)
    positive = frame[(amounts["eligible_cost"] > 0) | (amounts["paid"] > 0)]
    negative = frame[(amounts["eligible_cost"] < 0) | (amounts["paid"] < 0)]
    pos = positive[ids].assign(cost=amounts["eligible_cost"], paid=amounts["paid"])
    neg = negative[ids].assign(cost=-amounts["eligible_cost"], paid=-amounts["paid"])
    reversals = neg.groupby([*ids, "cost", "paid"], sort=False).size().rename("reversals")
    copy = pos.assign(service=positive["service"], settled=positive["settled"]).groupby(
        [*ids, "service", "settled", "cost", "paid"], sort=False).cumcount()
    allowed = pos.join(reversals, on=[*ids, "cost", "paid"])["reversals"].fillna(0)
    extra = positive.loc[copy.to_numpy() > allowed.to_numpy(), "row"]
    rejected.add(path, "exported twice (a copy of another row of its settlement id beyond "
                 "what its reversals explain; counted once)", extra)
    return frame[~frame["row"].isin(extra)]


def to_settlement_records(members: pd.DataFrame, claims: pd.DataFrame, seed: int = 0,
                          reversals: float = 0.03) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ciplan's members and claims written as the platform exports them, Chinese headers:
    (settlement records, roster). A share `reversals` of settlements is reversed and
    settled again (a negative row and a new positive one under the same id), as happens
    when a hospital corrects a bill; the import must net them back. Basic insurance's
    payment and out-of-scope costs are invented around the eligible cost (the eligible
    cost rule gives it back exactly)."""
    rng = np.random.default_rng(seed)
    n = len(claims)
    settled = pd.to_datetime(claims["settlement_date"])
    service = pd.to_datetime(claims["service_date"]) if "service_date" in claims else settled
    basic = np.round(claims["eligible_cost"].to_numpy() * rng.uniform(0.5, 2.0, n), 2)
    inscp = np.round(claims["eligible_cost"].to_numpy() + basic, 2)
    records = pd.DataFrame({
        "人员编号": claims["member_id"].astype(str).to_numpy(),
        "结算ID": [f"S{i:09d}" for i in range(n)],
        "结算时间": settled.dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        "开始日期": service.dt.strftime("%Y-%m-%d").to_numpy(),
        "医疗费总额": np.round(inscp * 1.1, 2), "符合政策范围金额": inscp,
        "基本医疗保险统筹基金支出": basic,
        "居民大病保险资金支出": claims["paid"].to_numpy(),
    })
    again = records[rng.random(n) < reversals]
    money = ["医疗费总额", "符合政策范围金额", "基本医疗保险统筹基金支出", "居民大病保险资金支出"]
    reversed_ = again.copy()
    reversed_[money] = -reversed_[money]
    records = pd.concat([records, reversed_, again], ignore_index=True)
    sex_code = {"M": "1", "F": "2"}
    roster = pd.DataFrame({
        "人员编号": members["member_id"].astype(str).to_numpy(),
        "参保年度": members["year"].to_numpy(),
        "性别": members["sex"].astype(str).map(sex_code).to_numpy(),
        "出生日期": [f"{y - a}-07-01" for y, a in zip(members["year"], members["age"],
                                                   strict=True)],
        "人员类别": np.where(members["special_group"].to_numpy(dtype=bool), "1501", "1101"),
        "参保年限": members["exposure"].to_numpy(),
    })
    if "residence" in members:
        roster["城乡类别"] = members["residence"].astype(str).map(
            {"urban": "城镇", "rural": "农村"}).to_numpy()
    return records, roster
