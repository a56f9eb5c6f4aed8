"""The exact evaluator: price any plan on a Forecast without the LP. Every figure a report
shows comes from here; the optimiser's objective must agree with it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from forecasting.forecast import Forecast, ScenarioSet
from forecasting.scheme.plan import Plan, member_payouts
from optimization.space import Costs

KPI_NAMES = ("premium_per_capita", "insured", "premium_income", "expected_payout",
             "operating_cost", "expected_loss", "loss_p05", "loss_p95", "loss_ratio",
             "effective_ratio", "prob_loss", "cvar95_loss")


@dataclass(frozen=True)
class PlanKPIs:
    """A plan's expected year on the Forecast. Money in CNY; loss > 0: the insurer loses."""

    premium_per_capita: float
    insured: float
    premium_income: float
    expected_payout: float
    operating_cost: float
    expected_loss: float
    loss_p05: float
    loss_p95: float
    loss_ratio: float
    effective_ratio: float
    prob_loss: float
    cvar95_loss: float
    expected_above_deductible: float
    payout_at: dict[str, float]          # annual cost level (CNY) -> payout of a member
    payout_by_age: dict[str, float]      # age band -> expected payouts (CNY)

    def as_dict(self) -> dict:
        return asdict(self)

    def metrics(self) -> dict[str, float]:
        """The KPIs with fixed names, for MLflow metrics and side-by-side tables."""
        return {k: float(getattr(self, k)) for k in KPI_NAMES}


def cvar(losses: np.ndarray, level: float) -> float:
    """Rockafellar-Uryasev CVaR: min over eta of eta + E[(L - eta)+] / (1 - level).

    The minimum sits at a scenario's loss, so trying each gives it exactly, as the LP does.
    """
    losses = np.sort(np.asarray(losses, dtype="float64"))
    excess = np.maximum(losses[None, :] - losses[:, None], 0).mean(axis=1)
    return float(np.min(losses + excess / (1 - level)))


def evaluate_plan(plan: Plan, forecast: Forecast, costs: Costs,
                  scenarios: ScenarioSet | None = None,
                  levels: tuple[float, ...] = (20_000.0, 50_000.0, 100_000.0, 200_000.0,
                                               500_000.0),
                  cvar_level: float = 0.95) -> PlanKPIs:
    """Every KPI of `plan` on `forecast` (scenarios give the range, P(loss > 0) and CVaR)."""
    by_cohort = forecast.payout_by_cohort(plan)
    payout = float(by_cohort.sum())
    income = plan.premium_per_capita * forecast.insured
    opex = costs.opex_fixed + costs.opex_share * income
    loss = payout + opex - income
    above = forecast.expected_above_deductible(plan)
    if scenarios is not None:
        losses = scenarios.payouts(plan) + opex - income
        p05, p95 = np.percentile(losses, [5, 95])
        prob, tail = float((losses > 0).mean()), cvar(losses, cvar_level)
    else:
        p05 = p95 = prob = tail = float("nan")
    bands = forecast.cohorts["age_band"].to_numpy()
    by_age = {forecast.spec.label(int(b)): float(by_cohort[bands == b].sum())
              for b in np.unique(bands)}
    return PlanKPIs(
        premium_per_capita=plan.premium_per_capita, insured=forecast.insured,
        premium_income=income, expected_payout=payout, operating_cost=opex,
        expected_loss=loss, loss_p05=float(p05), loss_p95=float(p95),
        loss_ratio=payout / income, effective_ratio=payout / above, prob_loss=prob,
        cvar95_loss=tail, expected_above_deductible=above,
        payout_at={f"{x:g}": float(member_payouts(plan, np.array([x]), np.array([False]))[0])
                   for x in levels},
        payout_by_age=by_age,
    )
