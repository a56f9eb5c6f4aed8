"""The insurer's yearly result for a plan applied to a year's claimants (the accounts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from forecasting.data.cells import Cells, completion_factors
from forecasting.scheme.in_force import Market, Scheme
from forecasting.scheme.plan import Plan, member_deductibles, member_payouts

RESULT_KEYS = (
    "year", "insured", "eligible_population", "insured_rate", "premium_per_capita",
    "premium_income", "eligible_above_deductible", "payouts", "operating_cost", "loss",
    "loss_ratio", "effective_ratio", "claimants_paid",
)


@dataclass(frozen=True)
class YearResult:
    """One year's accounts under a plan. Money in CNY; loss > 0 means the insurer lost.

    Premium is paid per insured person (head count), as the bureau transfers it.
    """

    year: int
    insured: int
    eligible_population: int
    insured_rate: float
    premium_per_capita: float
    premium_income: float
    eligible_above_deductible: float
    payouts: float
    operating_cost: float
    loss: float
    loss_ratio: float
    effective_ratio: float
    claimants_paid: int

    def as_dict(self) -> dict:
        return asdict(self)


def claimant_payouts(cells: Cells, plan: Plan) -> np.ndarray:
    """Payout (CNY) to each claimant row of `cells` under `plan`."""
    c = cells.claimants
    return member_payouts(plan, c["cost"].to_numpy(), c["special_group"].to_numpy())


def claimant_weights(cells: Cells) -> np.ndarray:
    """How many claimants each claimant row of `cells` stands for: 1, or in cells completed
    by claims development (an as-of view) its year's (and group's) claimant factor, the
    claimants not yet reported by the as-of date being like those reported."""
    return completion_factors(cells.completion, cells.claimants, "claimant_factor")


def year_result(cells: Cells, year: int, plan: Plan, market: Market) -> YearResult:
    """Apply `plan` to the claimants of `year` in `cells` and close the year's accounts
    (each claimant row weighted by the claimants it stands for, see claimant_weights)."""
    one = cells.year(year)
    insured = int(one.table["insured"].sum())
    weight = claimant_weights(one)
    paid = claimant_payouts(one, plan) * weight
    cost = one.claimants["cost"].to_numpy()
    above = weight * np.maximum(
        cost - member_deductibles(plan, one.claimants["special_group"]), 0.0)
    premium_income = plan.premium_per_capita * insured
    payouts = float(paid.sum())
    operating = market.operating_cost(premium_income)
    return YearResult(
        year=int(year),
        insured=insured,
        eligible_population=int(market.eligible_population),
        insured_rate=insured / market.eligible_population,
        premium_per_capita=plan.premium_per_capita,
        premium_income=premium_income,
        eligible_above_deductible=float(above.sum()),
        payouts=payouts,
        operating_cost=operating,
        loss=payouts + operating - premium_income,
        loss_ratio=payouts / premium_income if premium_income else float("nan"),
        effective_ratio=payouts / above.sum() if above.sum() else float("nan"),
        claimants_paid=round(float(weight[paid > 0].sum())),
    )


def history(cells: Cells, scheme: Scheme) -> pd.DataFrame:
    """The result table of every year in `cells` under that year's plan in force."""
    rows = [year_result(cells, y, scheme.plan(y), scheme.market(y)).as_dict()
            for y in cells.years]
    return pd.DataFrame(rows, columns=list(RESULT_KEYS))


def payouts_by_age(cells: Cells, year: int, plan: Plan) -> pd.Series:
    """Payouts (CNY) of `year` under `plan` by age band (lower edge), all bands listed."""
    one = cells.year(year)
    paid = claimant_payouts(one, plan) * claimant_weights(one)
    bands = np.arange(cells.spec.n_bands) * cells.spec.band_width
    sums = pd.Series(paid).groupby(one.claimants["age_band"].to_numpy()).sum()
    return sums.reindex(bands, fill_value=0.0).rename_axis("age_band").rename("payouts")
