"""The second portfolio read through the general data contract: policy periods cut into
calendar years, claims dated by service date, keys from the configuration, no plan."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from forecasting.data.contract import validate_members
from tests.conftest import HEALTH_KEYS


def test_policy_periods_become_member_years(health):
    """The loader's split equals the simulator's own, computed another way (day counts
    by pandas clipping, leap years included)."""
    rows = validate_members("members.csv", pa.Table.from_pandas(health.members),
                            HEALTH_KEYS)
    truth = health.member_years.set_index(["member_id", "year"])
    got = rows.set_index(["member_id", "year"]).loc[truth.index]
    assert len(rows) == len(truth)
    np.testing.assert_allclose(got["exposure"], truth["exposure"], rtol=1e-12)
    assert (got["age"] == truth["age"]).all()
    assert not rows["special_group"].any()  # no such column: nobody is special


def test_cells_hold_the_true_counts(health_ds, health):
    ds = health_ds
    t, my = ds.cells.table, health.member_years
    assert ds.cells.spec.keys == HEALTH_KEYS and ds.scheme.plans == {}
    assert ds.config.data.currency == "EUR"
    by_year = t.groupby("year")[["claims", "claimants", "exposure"]].sum()
    truth = my.assign(claimant=my["claims"] > 0).groupby("year")[
        ["claims", "claimant", "exposure"]].sum()
    np.testing.assert_array_equal(by_year["claims"], truth["claims"])
    np.testing.assert_array_equal(by_year["claimants"], truth["claimant"])
    np.testing.assert_allclose(by_year["exposure"], truth["exposure"], rtol=1e-12)
    assert ds.cells.claimants["cost"].sum() == pytest.approx(my["cost"].sum(), rel=1e-12)
