"""The DuckDB and pandas engines give identical cells and identical error messages."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from forecasting.data.cells import aggregate, annual_costs
from forecasting.data.cohorts import CohortSpec
from forecasting.data.dataset import load_data, write_data_dir
from forecasting.data.engines import NeedsDetail, engine_names, get_engine
from forecasting.data.options import DataOptions
from forecasting.errors import EngineError, InputError, UserError
from forecasting.simulate import lcity_scheme
from pipelines.workflows.builtin import write_city
from tests.engines import engine_cells


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.parametrize("spec", [CohortSpec(), CohortSpec(band_width=10, age_max=80,
                                                           keys=("sex",))])
def test_duckdb_equals_pandas(small_city, small_dir, spec):
    duck = engine_cells("duckdb", small_dir / "members.parquet", small_dir / "claims.parquet",
                        spec, 0.0)
    annual, counts = annual_costs(small_city.members, small_city.claims, counts=True)
    ref = aggregate(small_city.members, annual, spec, counts=counts)
    pd.testing.assert_frame_equal(duck.table, ref.table, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(_sorted(duck.claimants), _sorted(ref.claimants),
                                  check_exact=False, rtol=1e-10)


def _damaged(city, tmp_path, members=None, claims=None):
    return write_data_dir(tmp_path / "bad", city.members if members is None else members,
                          city.claims if claims is None else claims, city.scheme)


@pytest.mark.parametrize("damage", ["duplicate", "exposure", "orphan", "sex", "cost", "age",
                                    "missing cost", "claim year", "nan exposure",
                                    "absurd cost", "sum above ceiling"])
def test_duckdb_counts_offence_and_pandas_names_rows(tiny_city, tmp_path, damage):
    m, c = tiny_city.members.copy(), tiny_city.claims.copy()
    if damage == "duplicate":
        m = pd.concat([m, m.iloc[[3]]], ignore_index=True)
    elif damage == "exposure":
        m.loc[7, "exposure"] = 1.5
    elif damage == "orphan":
        c.loc[2, "member_id"] = 10**9
    elif damage == "sex":
        m["sex"] = m["sex"].astype(str)
        m.loc[4, "sex"] = "U"
    elif damage == "cost":
        c.loc[5, "eligible_cost"] = -1.0
    elif damage == "age":
        m.loc[6, "age"] = 130
    elif damage == "missing cost":
        c.loc[8, "eligible_cost"] = None
    elif damage == "claim year":
        c.loc[9, "year"] = 2030
    elif damage == "absurd cost":
        c.loc[4, "eligible_cost"] = 1e300
    elif damage == "sum above ceiling":  # each claim below 1e9, the member-year above
        c.loc[[5, 6], ["member_id", "year"]] = c.loc[5, ["member_id", "year"]].to_numpy()
        c.loc[[5, 6], "eligible_cost"] = 6e8
    else:
        m.loc[2, "exposure"] = float("nan")
    data = _damaged(tiny_city, tmp_path, m, c)
    with pytest.raises(NeedsDetail):
        engine_cells("duckdb", data / "members.parquet", data / "claims.parquet", CohortSpec(), 0.0)
    with pytest.raises(InputError, match=r"parquet: column"):
        load_data(data, DataOptions(engine="duckdb"))


def test_birth_year_instead_of_age(tiny_city, tmp_path):
    m = tiny_city.members.assign(birth_year=tiny_city.members["year"]
                                 - tiny_city.members["age"]).drop(columns="age")
    data = _damaged(tiny_city, tmp_path, members=m)
    base = write_city(tiny_city, tmp_path / "base")
    for engine in ("duckdb", "pandas"):
        pd.testing.assert_frame_equal(load_data(data, DataOptions(engine=engine)).cells.table,
                                      load_data(base, DataOptions(engine=engine)).cells.table)


def test_left_truncated_claims_load_with_reported_above(small_city, tmp_path):
    """Claims shown only above 15 k: claimants are exactly the members above it."""
    c = small_city.claims
    annual = c.groupby(["member_id", "year"])["eligible_cost"].transform("sum")
    data = _damaged(small_city, tmp_path, claims=c[annual > 15_000])
    for engine in ("duckdb", "pandas"):
        ds = load_data(data, DataOptions(reported_above=15_000, engine=engine))
        assert ds.cells.reported_above == 15_000
        assert (ds.cells.claimants["cost"] > 15_000).all()
        full = annual_costs(small_city.members, c)
        assert ds.cells.table["claimants"].sum() == (full > 15_000).sum()


def test_duckdb_engine_refuses_csv(tiny_csv_dir):
    with pytest.raises(UserError, match="duckdb engine reads Parquet"):
        load_data(tiny_csv_dir, DataOptions(engine="duckdb"))
    with pytest.raises(UserError, match="engine must be one of"):
        load_data(tiny_csv_dir, DataOptions(engine="spark-ish"))


def test_scheme_roundtrip(tmp_path):
    from forecasting.scheme.in_force import load_scheme, scheme_to_toml
    scheme = lcity_scheme((2019, 2020, 2021), scale=0.5)
    path = tmp_path / "scheme.toml"
    path.write_text(scheme_to_toml(scheme))
    assert load_scheme(path) == scheme


def test_explicit_engine_never_computes_through_another(tiny_city, tmp_path):
    """Text member ids: DuckDB's SQL cannot read them. `auto` takes the pandas engine's
    cells (it checked everything); an explicit `--engine duckdb` says so instead of
    switching engines silently."""
    m, c = tiny_city.members.copy(), tiny_city.claims.copy()
    m["member_id"] = "P" + m["member_id"].astype(str)
    c["member_id"] = "P" + c["member_id"].astype(str)
    data = _damaged(tiny_city, tmp_path, m, c)
    auto = load_data(data).cells
    assert auto.table["insured"].sum() == len(m)
    with pytest.raises(EngineError, match=r"the duckdb engine could not aggregate these data "
                       r"\(column 'member_id' is (large_)?string.*use --engine pandas"):
        load_data(data, DataOptions(engine="duckdb"))


def test_engine_registry_lists_every_engine_once():
    assert engine_names() == ("auto", "pandas", "duckdb", "spark")
    for name in engine_names()[1:]:
        assert get_engine(name).name == name


def test_paths_never_enter_sql_text(tiny_city, tmp_path, monkeypatch):
    """A data directory named like an SQL injection: the DuckDB engine reads it as a path.
    (Before, `read_parquet('{path}')` ran the COPY beside a real file named `d`.)"""
    monkeypatch.chdir(tmp_path)
    plain = write_city(tiny_city, tmp_path / "plain")
    evil = write_city(tiny_city, tmp_path / "d'); COPY (SELECT 42) TO 'pwned.csv'; --数据 [1]*?")
    shutil.copy(plain / "members.parquet", tmp_path / "d")  # what the injected SQL reads
    ref = load_data(plain, DataOptions(engine="pandas")).cells
    for engine in ("auto", "duckdb"):
        cells = load_data(evil, DataOptions(engine=engine)).cells
        pd.testing.assert_frame_equal(cells.table, ref.table, check_exact=False, rtol=1e-12)
    assert not list(tmp_path.rglob("pwned*"))


def test_sql_engines_read_l_city_layout_only_and_say_so(health, tmp_path):
    """Policy periods and other keys are read by the pandas engine: with --engine duckdb
    the error says so (never a silent switch); auto takes the pandas engine's cells."""
    data = write_data_dir(tmp_path / "h", health.members, health.claims, None)
    spec = CohortSpec(keys=("sex", "district"))
    with pytest.raises(EngineError, match="use --engine pandas"):
        load_data(data, DataOptions(engine="duckdb", spec=spec))
    auto = load_data(data, DataOptions(spec=spec)).cells
    ref = load_data(data, DataOptions(engine="pandas", spec=spec)).cells
    pd.testing.assert_frame_equal(auto.table, ref.table)


def test_duckdb_on_fewer_threads_gives_the_same_cells(small_dir, monkeypatch):
    """`ciplan train` reads with a core fewer (its helper imports meanwhile): DuckDB is
    opened with that many threads, and the cells are the same."""
    import duckdb

    opened = []
    connect = duckdb.connect

    def spy(*args, config=None, **kwargs):
        opened.append(dict(config or {}))
        return connect(*args, config=config, **kwargs)

    monkeypatch.setattr(duckdb, "connect", spy)
    args = (small_dir / "members.parquet", small_dir / "claims.parquet", CohortSpec(), 0.0)
    one = engine_cells("duckdb", *args, threads=1)
    every = engine_cells("duckdb", *args)
    assert opened == [{"threads": 1}, {}]
    pd.testing.assert_frame_equal(one.table, every.table)
    # claimants come in the order the threads finish (as with the default threads)
    pd.testing.assert_frame_equal(_sorted(one.claimants), _sorted(every.claimants))
    with pytest.raises(InputError, match="threads must be at least 1"):
        DataOptions(threads=0)
