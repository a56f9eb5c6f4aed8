"""The built-in L city: reproducible, realistic, and calibrated to the seed's accounts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.data.cells import aggregate, annual_costs
from forecasting.scheme.accounts import history, payouts_by_age
from forecasting.simulate import SEED_INSURED, SEED_LOSS, simulate_city
from pipelines.cli import app


def test_same_seed_same_data(tiny_city):
    again = simulate_city(seed=5, scale=0.002)
    pd.testing.assert_frame_equal(tiny_city.members, again.members)
    pd.testing.assert_frame_equal(tiny_city.claims, again.claims)
    other = simulate_city(seed=6, scale=0.002)
    assert not other.claims["eligible_cost"].equals(tiny_city.claims["eligible_cost"])


def test_adding_a_year_keeps_earlier_years(tiny_city):
    longer = simulate_city(seed=5, scale=0.002, years=(2019, 2020, 2021, 2022))
    early = longer.members[longer.members["year"] <= 2021].reset_index(drop=True)
    pd.testing.assert_frame_equal(tiny_city.members, early)
    assert set(longer.members["year"]) == {2019, 2020, 2021, 2022}


def test_settlements_add_up_and_paid_matches_plan(small_city):
    """Settlement rows sum to annual costs; `paid` sums to the plan's annual payout."""
    c = small_city.claims
    annual = c.groupby(["member_id", "year"]).agg(cost=("eligible_cost", "sum"),
                                                  paid=("paid", "sum")).reset_index()
    m = annual.merge(small_city.members, on=["member_id", "year"])
    for year, grp in m.groupby("year"):
        plan = small_city.scheme.plan(year)
        from forecasting.scheme.plan import member_payouts
        expected = member_payouts(plan, grp["cost"].to_numpy(), grp["special_group"].to_numpy())
        np.testing.assert_allclose(grp["paid"], expected, atol=0.02 * 4)
    assert (c["eligible_cost"] > 0).all()
    # care falls in the claim's year; it is settled then or later (lags: test_as_of)
    assert pd.to_datetime(c["service_date"]).dt.year.eq(c["year"]).all()
    assert (pd.to_datetime(c["settlement_date"]) >= pd.to_datetime(c["service_date"])).all()


def test_realistic_shape(small_city):
    cells = aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))
    h = history(cells, small_city.scheme)
    paid_share = h["claimants_paid"] / h["insured"]
    assert paid_share.between(0.005, 0.015).all()
    assert (h["payouts"] / h["claimants_paid"]).between(5_000, 15_000).all()
    special = small_city.members["special_group"].mean()
    assert 0.02 < special < 0.10
    # frequency rises with age: claimants per exposure, old vs young
    t = cells.table
    rate = t.groupby("age_band")[["claimants", "exposure"]].sum()
    rate = rate["claimants"] / rate["exposure"]
    assert rate.loc[70:].mean() > 1.5 * rate.loc[20:40].mean()
    # heavy tail: some claimants above 200 k CNY at 1 % scale; mean well above median
    cost = cells.claimants["cost"]
    assert cost.max() > 200_000 and cost.mean() > 1.8 * cost.median()


def test_calibrated_loss_at_any_scale(small_city):
    """At 1 % scale the loss per insured head still equals the seed's."""
    cells = aggregate(small_city.members, annual_costs(small_city.members, small_city.claims))
    h = history(cells, small_city.scheme).set_index("year")
    for year, loss in SEED_LOSS.items():
        assert h.loc[year, "loss"] / h.loc[year, "insured"] == pytest.approx(
            loss / SEED_INSURED[year], rel=1e-3)


def test_truth_written(small_dir):
    truth = json.loads((small_dir / "truth.json").read_text())
    assert truth["seed"] == 11 and truth["scale"] == 0.01
    assert set(truth["cost_index"]) == {"2019", "2020", "2021", "2022"}
    assert len(truth["by_year"]) == 4


@pytest.mark.slow
def test_default_data_meets_the_seed_facts(tmp_path, monkeypatch):
    """The one slow test: full-scale default L city reproduces the thesis' facts."""
    monkeypatch.setenv("CIPLAN_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["history", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    keys = ["year", "insured", "eligible_population", "insured_rate", "premium_per_capita",
            "premium_income", "payouts", "operating_cost", "loss", "loss_ratio",
            "effective_ratio", "claimants_paid"]
    assert [sorted(r) for r in rows] == [sorted(keys)] * 3
    h = pd.DataFrame(rows).set_index("year")
    for year, loss in {2019: 3.86e6, 2020: 2.33e6, 2021: 11.15e6}.items():
        assert h.loc[year, "loss"] == pytest.approx(loss, rel=0.10)
    assert h["insured_rate"].is_monotonic_decreasing and h["insured_rate"].nunique() == 3
    ppc = h["premium_per_capita"]
    assert ppc.max() <= 1.05 * ppc.mean() and ppc.min() >= 0.95 * ppc.mean()
    assert h["loss_ratio"].idxmax() == 2021
    assert h["insured"].min() > 1.9e6 and h["insured"].max() < 2.2e6
    # members aged 45-64 receive the largest share of payouts of any 20-year span
    from forecasting.data.dataset import load_data
    from pipelines.workflows.builtin import builtin_data
    ds = load_data(builtin_data())
    for year in ds.years:
        by_age = payouts_by_age(ds.cells, year, ds.scheme.plan(year))
        spans = {a: by_age.loc[a:a + 15].sum() for a in range(0, 70, 5)}
        assert max(spans, key=spans.get) == 45, (year, spans)
