"""Aggregation to cells: exact sums, invariances, sufficiency for a Poisson GLM."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import PoissonRegressor

from forecasting.data.cells import aggregate, annual_costs
from forecasting.data.cohorts import CohortSpec
from forecasting.data.dataset import data_key, load_data, write_data_dir
from forecasting.data.options import DataOptions
from forecasting.errors import InputError


@pytest.fixture(scope="module")
def members_claims(small_city):
    return small_city.members, small_city.claims


def test_cells_sum_back_to_member_totals(members_claims):
    members, claims = members_claims
    cells = aggregate(members, annual_costs(members, claims))
    t = cells.table
    assert t["insured"].sum() == len(members)
    assert t["exposure"].sum() == pytest.approx(members["exposure"].sum(), rel=1e-12)
    assert t["cost"].sum() == pytest.approx(claims["eligible_cost"].sum(), rel=1e-12)
    # a claimant is a member-year with cost > 0: count them straight from the claims
    n_claimants = claims.groupby(["member_id", "year"])["eligible_cost"].sum().gt(0).sum()
    assert t["claimants"].sum() == n_claimants == len(cells.claimants)
    # per year, too, against a pandas groupby on member rows
    by_year = members.groupby("year")["exposure"].sum()
    np.testing.assert_allclose(t.groupby("year")["exposure"].sum(), by_year, rtol=1e-12)


def test_cells_match_independent_groupby(members_claims):
    members, claims = members_claims
    spec = CohortSpec()
    cells = aggregate(members, annual_costs(members, claims), spec)
    annual = claims.groupby(["member_id", "year"], as_index=False)["eligible_cost"].sum()
    m = members.merge(annual, on=["member_id", "year"], how="left").fillna({"eligible_cost": 0})
    m["age_band"] = np.minimum(m["age"] // 5, 17) * 5
    keys = ["year", "age_band", "sex", "residence", "special_group"]
    ref = m.groupby(keys, observed=True).agg(
        exposure=("exposure", "sum"), insured=("exposure", "size"),
        claimants=("eligible_cost", lambda c: int((c > 0).sum())),
        cost=("eligible_cost", "sum")).reset_index()
    got = cells.table.sort_values(keys).reset_index(drop=True)
    ref = ref.sort_values(keys).reset_index(drop=True)
    for col in ("exposure", "insured", "claimants", "cost"):
        np.testing.assert_allclose(got[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-10)
    assert (got["age_band"].to_numpy() == ref["age_band"].to_numpy()).all()


def test_invariant_to_row_order_and_split_claims(members_claims):
    members, claims = members_claims
    base = aggregate(members, annual_costs(members, claims)).table
    shuffled_m = members.sample(frac=1.0, random_state=1).reset_index(drop=True)
    halves = claims.assign(eligible_cost=claims["eligible_cost"] / 2)
    split = pd.concat([halves, halves]).sample(frac=1.0, random_state=2)
    other = aggregate(shuffled_m, annual_costs(shuffled_m, split)).table
    pd.testing.assert_frame_equal(base, other, check_exact=False, rtol=1e-10)


def test_string_member_ids_give_same_cells(members_claims):
    members, claims = members_claims
    base = aggregate(members, annual_costs(members, claims)).table
    as_text = aggregate(members.assign(member_id="L" + members["member_id"].astype(str)),
                        annual_costs(members.assign(member_id="L" + members["member_id"]
                                                    .astype(str)),
                                     claims.assign(member_id="L" + claims["member_id"]
                                                   .astype(str)))).table
    pd.testing.assert_frame_equal(base, as_text)


def test_cohort_keys_configurable(members_claims):
    members, claims = members_claims
    spec = CohortSpec(band_width=10, age_max=80, keys=("sex",))
    cells = aggregate(members, annual_costs(members, claims), spec)
    assert list(cells.table.columns[:3]) == ["year", "age_band", "sex"]
    assert cells.table["age_band"].max() == 80
    assert spec.label(80) == "80+" and spec.label(40) == "40-49"
    assert cells.table["insured"].sum() == len(members)


def _design(frame: pd.DataFrame) -> np.ndarray:
    return pd.get_dummies(frame[["age_band", "sex", "residence", "special_group", "year"]]
                          .astype(str), drop_first=True).to_numpy(float)


def test_poisson_glm_on_cells_equals_member_level(members_claims):
    """Exposure-weighted Poisson likelihood depends on member rows only through cell sums."""
    members, claims = members_claims
    annual = annual_costs(members, claims)
    cells = aggregate(members, annual).table
    rows = members.assign(age_band=np.minimum(members["age"] // 5, 17) * 5)
    key = ["year", "age_band", "sex", "residence", "special_group"]
    # member-level and cell-level frames must share one design column order
    both = pd.concat([rows[key], cells[key]], ignore_index=True)
    x_all = _design(both)
    x_rows, x_cells = x_all[: len(rows)], x_all[len(rows):]
    glm = dict(alpha=0.0, max_iter=1000, tol=1e-10)
    member_fit = PoissonRegressor(**glm).fit(
        x_rows, (annual > 0) / members["exposure"], sample_weight=members["exposure"])
    cell_fit = PoissonRegressor(**glm).fit(
        x_cells, cells["claimants"] / cells["exposure"], sample_weight=cells["exposure"])
    np.testing.assert_allclose(cell_fit.coef_, member_fit.coef_, atol=1e-5)
    assert cell_fit.intercept_ == pytest.approx(member_fit.intercept_, abs=1e-5)


def test_load_data_parquet_and_csv_agree(small_city, small_dir, tmp_path):
    from pipelines.workflows.builtin import write_city
    csv_dir = write_city(small_city, tmp_path / "csv", fmt="csv")
    a, b = load_data(small_dir), load_data(csv_dir)
    pd.testing.assert_frame_equal(a.cells.table, b.cells.table, check_exact=False, rtol=1e-9)
    assert a.fingerprint != b.fingerprint  # different files, different fingerprint
    assert load_data(small_dir).fingerprint == a.fingerprint


@pytest.mark.parametrize("options", [
    DataOptions(),
    DataOptions(reported_above=15_000, threshold_rule="at-or-above"),
    DataOptions(reported_above=15_000.0, spec=CohortSpec(band_width=10, age_max=80,
                                                         keys=("sex",))),
    DataOptions(severity_summary=True, engine="pandas")])
def test_data_key_is_what_load_data_gives_without_building_cells(small_city, tmp_path,
                                                                 options, monkeypatch):
    """A re-run decides from the DataKey: the same fingerprint, cohorts, threshold and rule
    as the Dataset's (so the same train config), and no cells built for it."""
    from forecasting.data import dataset as data_module

    c = small_city.claims
    annual = c.groupby(["member_id", "year"])["eligible_cost"].transform("sum")
    reported = c[annual > 15_000] if options.reported_above else c  # left-truncated data
    data = write_data_dir(tmp_path / "data", small_city.members, reported, small_city.scheme)
    loaded = load_data(data, options)
    monkeypatch.setattr(data_module, "build_cells", lambda *a: pytest.fail("cells built"))
    key = data_key(data, options)
    assert key == loaded.key
    assert (key.fingerprint, key.spec) == (loaded.fingerprint, loaded.cells.spec)
    assert repr(key.reported_above) == repr(loaded.cells.reported_above)  # hashed by repr


def test_data_key_changes_with_the_data_and_the_settings(small_dir, tmp_path):
    """Another threshold, other cohorts or one changed byte: another fingerprint; the
    checks before the tables are read still refuse bad input."""
    base = data_key(small_dir)
    assert data_key(small_dir, DataOptions(reported_above=1.0)).fingerprint != base.fingerprint
    assert data_key(small_dir, DataOptions(spec=CohortSpec(band_width=10, age_max=80))
                    ).fingerprint != base.fingerprint
    changed = tmp_path / "data"
    shutil.copytree(small_dir, changed)
    scheme = changed / "scheme.toml"
    scheme.write_text(scheme.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert data_key(changed).fingerprint != base.fingerprint
    assert data_key(changed).fingerprint == load_data(changed).fingerprint
    with pytest.raises(InputError, match="cohort key 'sexx' is not a column"):
        data_key(small_dir, DataOptions(spec=CohortSpec(keys=("sexx",))))
    (changed / "claims.parquet").unlink()
    with pytest.raises(InputError):
        data_key(changed)
