"""Settlement records of the national platform (GBK, Chinese headers, reversals) and a
roster give the same cells and accounts as the simulator's own members and claims."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.data.dataset import load_data
from forecasting.data.options import DataOptions
from forecasting.data.settlements import import_settlements, load_mapping, to_settlement_records
from forecasting.errors import InputError
from forecasting.scheme.accounts import history
from pipelines.cli import app

runner = CliRunner()


def test_round_trip_through_the_platform_format(tiny_city, tmp_path):
    """simulate --format settlements, then import: identical cells and history."""
    records = tmp_path / "export"
    ok = runner.invoke(app, ["simulate", "--out", str(records), "--scale", "0.002",
                             "--seed", "5", "--format", "settlements"])
    assert ok.exit_code == 0, ok.output
    assert "人员编号" in (records / "records.csv").read_text(encoding="gbk")
    data = tmp_path / "data"
    result = runner.invoke(app, ["import", "--records", str(records / "records.csv"),
                                 "--roster", str(records / "roster.csv"), "--scheme",
                                 str(records / "scheme.toml"), "--out", str(data)])
    assert result.exit_code == 0, result.output
    assert "read as GBK" in result.output and "0 rows left out" in result.output
    own = tmp_path / "own"
    assert runner.invoke(app, ["simulate", "--out", str(own), "--scale", "0.002", "--seed",
                               "5"]).exit_code == 0
    a = load_data(data, DataOptions(engine="pandas"))
    b = load_data(own, DataOptions(engine="pandas"))
    pd.testing.assert_frame_equal(a.cells.table, b.cells.table, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(history(a.cells, a.scheme), history(b.cells, b.scheme),
                                  check_exact=False, rtol=1e-9)


def test_reversals_net_and_bad_rows_are_counted_and_named(tiny_city, tmp_path):
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=1,
                                            reversals=0.2)
    records, roster = records.astype(str), roster.astype(str)
    touched = {int(x) for x in records.loc[[3, 5, 7], "人员编号"]}
    touched.add(int(roster.loc[2, "人员编号"]))
    records.loc[3, "符合政策范围金额"] = "12a"                  # not a number
    records.loc[5, "人员编号"] = "nobody"                        # not on the roster
    lone = records.iloc[[7]].copy()
    lone["结算ID"] = "REFUND-ONLY"
    lone[["符合政策范围金额", "基本医疗保险统筹基金支出"]] = ["-500.0", "0.0"]
    records = pd.concat([records, lone], ignore_index=True)       # a refund with no bill
    roster.loc[2, "性别"] = "9"                                   # unknown sex code
    roster.to_excel(tmp_path / "roster.xlsx", index=False)
    records.to_parquet(tmp_path / "records.parquet", index=False)
    found = import_settlements(tmp_path / "records.parquet", tmp_path / "roster.xlsx")
    said = "\n".join(found.said)
    assert "roster.xlsx: read as XLSX" in said
    assert "records.parquet: 1 row with a non-numeric '符合政策范围金额' (row 4)" in said
    assert "nets to a negative eligible cost (row " in said
    assert "not on the roster in that year" in said
    assert "with a sex code not in the mapping ('性别') (row 3)" in said
    assert found.rejected >= 4
    # the reversed-and-settled-again bills net back: eligible cost per member-year as
    # the simulator drew it, for everyone not touched above
    ref = tiny_city.claims.groupby(["member_id", "year"])["eligible_cost"].sum()
    got = found.claims.groupby(["member_id", "year"])["eligible_cost"].sum()
    got.index = got.index.set_levels(got.index.levels[0].astype("int64"), level=0)
    common = ref.index.intersection(got.index)
    common = common[~common.get_level_values(0).isin(touched)]
    assert len(common) > 0.9 * len(ref)
    pd.testing.assert_series_equal(got[common], ref[common], check_exact=False, atol=0.011)


def test_a_mapping_without_the_needed_column_says_which(tiny_city, tmp_path):
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims)
    records.drop(columns=["基本医疗保险统筹基金支出"]).to_csv(tmp_path / "r.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError, match=r"r\.csv: no column for 'hifp_pay'; expected one of "
                       r"\['hifp_pay', '基本医疗保险统筹基金支出'\]"):
        import_settlements(tmp_path / "r.csv", tmp_path / "p.csv")
    bad = tmp_path / "m.toml"
    bad.write_text('[records]\n[roster]\n[rules]\neligible_cost = "a * b"\n[codes.sex]\n')
    result = runner.invoke(app, ["import", "--records", str(tmp_path / "r.csv"), "--roster",
                                 str(tmp_path / "p.csv"), "--mapping", str(bad), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 2 and "expected record fields joined by + and -" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_late_refund_keeps_the_bill_dated_when_first_settled(tiny_city, tmp_path):
    """A partial refund under the same settlement id a year later nets into the bill, and
    the bill keeps its first settlement date (dated at the refund it vanished from every
    as-of view between the two and its lag grew by a year); a row settled before its care
    began is left out and named."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims,
                                            reversals=0.0)
    records, roster = records.astype(str), roster.astype(str)
    bill = records.iloc[[10]].copy()
    refund = bill.assign(结算时间="2022-06-30 00:00:00")
    money = ["医疗费总额", "符合政策范围金额", "基本医疗保险统筹基金支出", "居民大病保险资金支出"]
    refund[money] = (-0.1 * bill[money].astype(float)).round(2).astype(str)
    records.loc[20, "结算时间"] = "2000-01-01 00:00:00"
    pd.concat([records, refund], ignore_index=True).to_csv(tmp_path / "r.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    found = import_settlements(tmp_path / "r.csv", tmp_path / "p.csv")
    said = "\n".join(found.said)
    assert "1 row settled before the care began ('结算时间' before '开始日期')" in said
    first = pd.Timestamp(bill["结算时间"].iloc[0]).date()
    member = bill["人员编号"].iloc[0]
    mine = found.claims[(found.claims["member_id"] == member)
                        & (found.claims["service_date"].astype(str)
                           == bill["开始日期"].iloc[0])]
    assert first in set(mine["settlement_date"])
    assert pd.Timestamp("2022-06-30").date() not in set(found.claims["settlement_date"])


def test_a_settlement_exported_twice_counts_once(tiny_city, tmp_path):
    """Three settlements exported twice (identical rows, no reversal) count once and are
    named; the simulator's reversed-and-settled-again bills (an identical positive row
    after a reversal) still count once each, unflagged."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=3,
                                            reversals=0.2)
    resettled = records["结算ID"].duplicated(keep=False)
    assert resettled.sum() > 10
    twice = records[~resettled].iloc[[0, 4, 9]]
    pd.concat([records, twice], ignore_index=True).to_csv(tmp_path / "r.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    found = import_settlements(tmp_path / "r.csv", tmp_path / "p.csv")
    said = "\n".join(found.said)
    assert "3 rows exported twice" in said and found.rejected == 3
    ref = tiny_city.claims.groupby("year")["eligible_cost"].sum()
    got = found.claims.groupby("year")["eligible_cost"].sum()
    pd.testing.assert_series_equal(got, ref, check_exact=False, atol=0.05)
    assert len(found.claims) == len(tiny_city.claims)


def test_dates_written_the_chinese_way_read_as_the_same_dates(tiny_city, tmp_path):
    """结算时间 as 2021年3月5日 10:00:00 and 出生日期/开始日期 as 2021年3月5日 (as Chinese
    exports write them) give the same members and claims as ISO dates; nothing is left
    out."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=2)

    def chinese(text: pd.Series) -> pd.Series:
        d = pd.to_datetime(text)
        rest = text.str.slice(10)
        return (d.dt.year.astype(str) + "年" + d.dt.month.astype(str) + "月"
                + d.dt.day.astype(str) + "日" + rest)

    records.to_csv(tmp_path / "iso.csv", index=False)
    roster.to_csv(tmp_path / "p_iso.csv", index=False)
    for col in ("结算时间", "开始日期"):
        records[col] = chinese(records[col])
    roster["出生日期"] = chinese(roster["出生日期"])
    assert records["结算时间"].iloc[0].count("年") == 1
    records.to_csv(tmp_path / "zh.csv", index=False)
    roster.to_csv(tmp_path / "p_zh.csv", index=False)
    iso = import_settlements(tmp_path / "iso.csv", tmp_path / "p_iso.csv")
    zh = import_settlements(tmp_path / "zh.csv", tmp_path / "p_zh.csv")
    assert zh.rejected == 0 == iso.rejected
    pd.testing.assert_frame_equal(zh.claims, iso.claims)
    pd.testing.assert_frame_equal(zh.members, iso.members)
    assert len(zh.claims) == len(tiny_city.claims)


def test_a_roster_row_exported_twice_counts_once(tiny_city, tmp_path):
    """A roster row given twice is left out once and named, so the data directory reads
    (it was written with the person twice and refused by every later command); two
    different rows for one person and year stop the import with both rows named."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=4)
    records.to_csv(tmp_path / "r.csv", index=False)
    pd.concat([roster, roster.iloc[[1, 7]]], ignore_index=True).to_csv(tmp_path / "p.csv",
                                                                        index=False)
    result = runner.invoke(app, ["import", "--records", str(tmp_path / "r.csv"), "--roster",
                                 str(tmp_path / "p.csv"), "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "2 rows exported twice (a copy of another roster row" in result.output
    data = load_data(tmp_path / "data", DataOptions(engine="pandas"))
    assert data.cells.table["insured"].sum() == len(tiny_city.members)
    other = roster.iloc[[1]].assign(参保年限=0.5)
    pd.concat([roster, other], ignore_index=True).to_csv(tmp_path / "q.csv", index=False)
    with pytest.raises(InputError, match=r"q\.csv: columns '人员编号', '参保年度', rows 2, "
                       rf"{len(roster) + 1}: expected one row per person and year"):
        import_settlements(tmp_path / "r.csv", tmp_path / "q.csv")


def _year_last(text: pd.Series, order: str) -> pd.Series:
    """ISO dates (with any time after them) written with the year last: 05/03/2021."""
    d = pd.to_datetime(text)
    day, month = d.dt.strftime("%d"), d.dt.strftime("%m")
    head = day + "/" + month if order == "dmy" else month + "/" + day
    return head + "/" + d.dt.strftime("%Y") + text.str.slice(10)


def test_day_first_dates_are_read_in_one_order_per_column(tiny_city, tmp_path):
    """Dates written day first (25/03/2021, 05/03/2021) read as the ISO export's, every
    date of a column in the order its values settle (before, "mixed" read 05/03/2021 as
    May 3 beside 25/03/2021 as March 25); a column read both ways is refused naming its
    rows; a column no value settles is refused unless the mapping sets date_order, and
    then read that way."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=2)
    records.to_csv(tmp_path / "iso.csv", index=False)
    roster.to_csv(tmp_path / "p_iso.csv", index=False)
    iso = import_settlements(tmp_path / "iso.csv", tmp_path / "p_iso.csv")
    for col in ("结算时间", "开始日期"):
        records[col] = _year_last(records[col], "dmy")
    # the simulator's members are born on 1 July: a column no value settles; 15 July does
    born = pd.to_datetime(roster["出生日期"]) + pd.Timedelta(days=14)
    roster["出生日期"] = _year_last(born.dt.strftime("%Y-%m-%d"), "dmy")
    assert (records["开始日期"].str.slice(0, 2).astype(int) <= 12).any()
    records.to_csv(tmp_path / "dmy.csv", index=False)
    roster.to_csv(tmp_path / "p_dmy.csv", index=False)
    dmy = import_settlements(tmp_path / "dmy.csv", tmp_path / "p_dmy.csv")
    assert dmy.rejected == 0 == iso.rejected
    pd.testing.assert_frame_equal(dmy.claims, iso.claims)
    pd.testing.assert_frame_equal(dmy.members, iso.members)

    both = records.copy()
    row = int(both.index[both["开始日期"].str.slice(3, 5).astype(int) <= 12][0])
    both.loc[row, "开始日期"] = "03/25/2021"
    both.to_csv(tmp_path / "both.csv", index=False)
    with pytest.raises(InputError, match=r"both\.csv: column '开始日期': expected one order of "
                       r"day and month in a column; got day first on rows .* and month first "
                       rf"on row {row + 1} \(03/25/2021\)"):
        import_settlements(tmp_path / "both.csv", tmp_path / "p_dmy.csv")

    # every date of the column could be either: refused, with how to say which
    vague = records.copy()
    vague["开始日期"] = "05/03/" + vague["开始日期"].str.slice(6)
    vague["结算时间"] = "06/04/" + vague["结算时间"].str.slice(6)
    vague.to_csv(tmp_path / "vague.csv", index=False)
    result = runner.invoke(app, ["import", "--records", str(tmp_path / "vague.csv"), "--roster",
                                 str(tmp_path / "p_dmy.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Error: ") and "vague.csv: column '开始日期', rows 1, 2" in \
        result.stderr and 'set date_order = "dmy" (day first) or "mdy"' in result.stderr
    assert not (tmp_path / "out").exists()
    mapping = tmp_path / "m.toml"
    default = resources.files("forecasting.data.defaults") / "settlements.toml"
    mapping.write_text(default.read_text(encoding="utf-8").replace(
        '# date_order = "dmy"', 'date_order = "dmy"'), encoding="utf-8")
    found = import_settlements(tmp_path / "vague.csv", tmp_path / "p_dmy.csv",
                               load_mapping(mapping))
    assert set(pd.to_datetime(found.claims["service_date"]).dt.strftime("%m-%d")) == {"03-05"}
    mapping.write_text(mapping.read_text(encoding="utf-8").replace('"dmy"', '"mdy"'),
                       encoding="utf-8")
    with pytest.raises(InputError, match=r"p_dmy\.csv: column '出生日期', rows? .*: expected "
                       r"dates month first \(the mapping's date_order = 'mdy'\); got dates "
                       "day first"):
        import_settlements(tmp_path / "vague.csv", tmp_path / "p_dmy.csv", load_mapping(mapping))


def test_a_date_no_order_reads_is_one_unreadable_row_not_a_refused_column(tiny_city, tmp_path):
    """13/14/2021 is no date day first nor month first: that row is rejected as unreadable,
    as any other unreadable date, and the rest of a day-first column is read (it was
    taken for a month-first date, and the whole file refused as read both ways)."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=2)
    records.to_csv(tmp_path / "iso.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    iso = import_settlements(tmp_path / "iso.csv", tmp_path / "p.csv")
    records["开始日期"] = _year_last(records["开始日期"], "dmy")
    assert (records["开始日期"].str.slice(0, 2).astype(int) > 12).any()  # settles dmy
    records.loc[0, "开始日期"] = "13/14/2021"
    records.to_csv(tmp_path / "dmy.csv", index=False)
    dmy = import_settlements(tmp_path / "dmy.csv", tmp_path / "p.csv")
    assert dmy.rejected == iso.rejected + 1


def test_money_as_bureaus_write_it_reads_as_the_same_amounts(tiny_city, tmp_path):
    """1,234.50 (thousands separators), full-width digits, 元 and ¥, a BOM, spaces round
    the headers and empty rows at the end: the same claims as the plain export, no row
    left out (read as non-numeric, the large bills, the ones with a separator, were lost)."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims, seed=1,
                                            reversals=0.2)
    records, roster = records.astype(str), roster.astype(str)
    roster.to_csv(tmp_path / "p.csv", index=False, encoding="gbk")
    records.to_csv(tmp_path / "plain.csv", index=False, encoding="gbk")
    plain = import_settlements(tmp_path / "plain.csv", tmp_path / "p.csv")
    fullwidth = {ord(c): ord(c) + 0xFEE0 for c in "0123456789.-"}  # full-width forms
    money = ["符合政策范围金额", "基本医疗保险统筹基金支出", "居民大病保险资金支出"]
    styles = [lambda x: f"{float(x):,.2f}", lambda x: x.translate(fullwidth),
              lambda x: f"{x}元", lambda x: f"\uffe5{float(x):,.2f}"]
    for style, col in zip(styles[:3], money, strict=True):
        records[col] = records[col].map(style)
    records.loc[::2, money[0]] = records.loc[::2, money[0]].str.replace(",", "").map(styles[3])
    assert records[money[0]].str.contains(",").any()
    records.columns = [f" {c} " for c in records.columns]
    text = records.to_csv(index=False) + ",,,,,,,\n , , , , , , , \n"
    (tmp_path / "bureau.csv").write_text(text, encoding="utf-8-sig")
    found = import_settlements(tmp_path / "bureau.csv", tmp_path / "p.csv")
    assert found.rejected == 0, found.said
    pd.testing.assert_frame_equal(found.claims, plain.claims)


def test_a_row_failing_for_several_reasons_is_one_row_left_out(tiny_city, tmp_path):
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims)
    records, roster = records.astype(str), roster.astype(str)
    records.loc[0, ["符合政策范围金额", "基本医疗保险统筹基金支出", "开始日期"]] = "x"
    records.to_csv(tmp_path / "r.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    found = import_settlements(tmp_path / "r.csv", tmp_path / "p.csv")
    assert len(found.said) == 6 and found.rejected == 1


def test_an_unquoted_comma_in_an_amount_is_refused_on_one_line(tiny_city, tmp_path):
    """1,234.50 unquoted splits a row into one field too many: refused naming the line
    (pandas took such a first row for an index, shifted every column and crashed)."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims)
    roster.to_csv(tmp_path / "p.csv", index=False)
    lines = records.astype(str).to_csv(index=False).splitlines()
    cells = lines[1].split(",")
    cells[5] = f"{float(cells[5]) + 1000:,.2f}"
    (tmp_path / "r.csv").write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]))
    result = runner.invoke(app, ["import", "--records", str(tmp_path / "r.csv"), "--roster",
                                 str(tmp_path / "p.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'r.csv'}: line 2 has 9 fields, the header 8; expected a value "
        "holding a comma (1,234.50) in quotes"]
    assert not (tmp_path / "out").exists()
    # a comma ending every line (an empty last column) is no such thing
    (tmp_path / "t.csv").write_text("\n".join(f"{line}," for line in lines))
    assert len(import_settlements(tmp_path / "t.csv", tmp_path / "p.csv").claims) > 0


def test_a_file_of_which_every_row_is_left_out_is_refused(tiny_city, tmp_path):
    """Ids the roster writes otherwise (zero-padded in the records) leave every claim
    out: refused with the reason and rows, nothing written (was: a data directory of no
    claims, exit 0). A year written 2021年 reads as 2021."""
    records, roster = to_settlement_records(tiny_city.members, tiny_city.claims)
    records, roster = records.astype(str), roster.astype(str)
    records.to_csv(tmp_path / "r.csv", index=False)
    roster.to_csv(tmp_path / "p.csv", index=False)
    plain = import_settlements(tmp_path / "r.csv", tmp_path / "p.csv")
    roster["参保年度"] = roster["参保年度"] + "年"
    roster.to_csv(tmp_path / "p2.csv", index=False)
    again = import_settlements(tmp_path / "r.csv", tmp_path / "p2.csv")
    pd.testing.assert_frame_equal(again.members, plain.members)
    records["人员编号"] = records["人员编号"].str.zfill(12)
    records.to_csv(tmp_path / "z.csv", index=False)
    result = runner.invoke(app, ["import", "--records", str(tmp_path / "z.csv"), "--roster",
                                 str(tmp_path / "p.csv"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert "z.csv: all " in line and "of a person not on the roster in that year (rows 1, " in line
    assert not (tmp_path / "out").exists()
