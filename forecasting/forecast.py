"""The Forecast of year T+1: per cohort the insured, expected claimants and a severity
distribution from which any plan is priced exactly, plus scenarios for risk measures.

Expected payout of a plan: for each cohort, claimants x sum_k r_k x layer(band k, capped),
with the cap turned into a cost level (Plan.capped_cost) so that capped payouts are layers
too. Scenarios draw, jointly: parameter uncertainty (frequency GLM coefficients from their
asymptotic normal law), a systemic year effect on frequency and on cost level (the spread of
past years around the model), and process variance (Poisson claim counts, costs drawn from
each cohort's severity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from forecasting.data.cohorts import CohortSpec
from forecasting.data.io import atomic_dir
from forecasting.models.severity import BlendedSeverity
from forecasting.scheme.plan import Plan, member_payouts

STANDARD_BANDS = ((0.0, 15_000.0), (15_000.0, 50_000.0), (50_000.0, 100_000.0),
                  (100_000.0, 200_000.0), (200_000.0, 300_000.0), (300_000.0, np.inf))
FORECAST_FILE = "forecast.joblib"


def payout_per_claimant(plan: Plan, severity: BlendedSeverity) -> float:
    """Expected annual payout (CNY) to one claimant with this severity under `plan`."""
    x_cap = plan.capped_cost()
    lower = np.minimum(plan.lower_edges, x_cap)
    upper = np.minimum(plan.upper_edges, x_cap)
    lev_hi = np.asarray(severity.lev(upper), dtype="float64")
    lev_lo = np.asarray(severity.lev(lower), dtype="float64")
    return float(np.dot(plan.ratios, lev_hi - lev_lo))


@dataclass(frozen=True)
class ScenarioSet:
    """Simulated annual costs above `floor` (CNY) in n scenarios of the forecast year."""

    n: int
    floor: float
    cost: np.ndarray
    scenario: np.ndarray
    cohort: np.ndarray
    special: np.ndarray  # per cohort

    def payouts(self, plan: Plan) -> np.ndarray:
        """Total payout (CNY) in each scenario; exact when every deductible is >= floor."""
        low = min(plan.deductible, plan.for_special_group().deductible)
        if low < self.floor:
            raise ValueError(f"scenarios hold costs above {self.floor:g} CNY only; the plan's "
                             f"lowest deductible is {low:g}")
        paid = member_payouts(plan, self.cost, self.special[self.cohort])
        return np.bincount(self.scenario, weights=paid, minlength=self.n)

    def payouts_by_cohort(self, plan: Plan, n_cohorts: int) -> np.ndarray:
        """Payout per scenario and cohort, shape (n, n_cohorts)."""
        paid = member_payouts(plan, self.cost, self.special[self.cohort])
        flat = np.bincount(self.scenario * n_cohorts + self.cohort, weights=paid,
                           minlength=self.n * n_cohorts)
        return flat.reshape(self.n, n_cohorts)


@dataclass(frozen=True)
class Forecast:
    """Claims of one future year by cohort (see module doc). Money in CNY."""

    year: int
    spec: CohortSpec
    cohorts: pd.DataFrame  # keys, insured, exposure, frequency, claimants, mean_severity
    severities: tuple[BlendedSeverity, ...]
    freq_design: np.ndarray | None  # [1, design] rows, for GLM coefficient draws
    freq_covariance: np.ndarray | None
    freq_year_sd: float
    sev_year_sd: float
    provenance: dict = field(default_factory=dict)

    @property
    def insured(self) -> float:
        return float(self.cohorts["insured"].sum())

    def _special(self) -> np.ndarray:
        if "special_group" not in self.cohorts:
            return np.zeros(len(self.cohorts), dtype=bool)
        return self.cohorts["special_group"].to_numpy(dtype=bool)

    def payout_by_cohort(self, plan: Plan) -> np.ndarray:
        """Expected payout (CNY) per cohort; special groups get the special terms."""
        special_plan = plan.for_special_group()
        return np.array([
            n * payout_per_claimant(special_plan if sp else plan, sev)
            for n, sev, sp in zip(self.cohorts["claimants"], self.severities, self._special(),
                                  strict=True)])

    def expected_payout(self, plan: Plan) -> float:
        """Expected total payout of the year under `plan` (CNY)."""
        return float(self.payout_by_cohort(plan).sum())

    def expected_above_deductible(self, plan: Plan) -> float:
        """Expected eligible cost above each member's deductible (CNY), special ones lower."""
        special_d = plan.for_special_group().deductible
        d = np.where(self._special(), special_d, plan.deductible)
        return float(sum(n * sev.layer(di, np.inf) for n, sev, di in
                         zip(self.cohorts["claimants"], self.severities, d, strict=True)))

    def layer_table(self, bands=STANDARD_BANDS) -> pd.DataFrame:
        """Expected cost per claimant inside each band, by cohort (CNY)."""
        cols = {f"layer_{_k(a)}_{_k(b)}": [sev.layer(a, b) for sev in self.severities]
                for a, b in bands}
        return pd.DataFrame(cols)

    def scenarios(self, n: int, seed: int = 0, floor: float = 7_500.0) -> ScenarioSet:
        """n joint draws of the year: parameters, year effects, claim counts and costs."""
        rng = np.random.default_rng(seed)
        k = len(self.cohorts)
        freq_mult = np.exp(rng.normal(0, self.freq_year_sd, n))[:, None] * np.ones((1, k))
        if self.freq_covariance is not None:
            shift = rng.multivariate_normal(np.zeros(len(self.freq_covariance)),
                                            self.freq_covariance, size=n, method="eigh")
            freq_mult = freq_mult * np.exp(shift @ self.freq_design.T)
        cost_mult = np.exp(rng.normal(0, self.sev_year_sd, n))
        lam = freq_mult * self.cohorts["claimants"].to_numpy(float)[None, :]
        parts = [_draw_cohort(rng, sev, lam[:, c], cost_mult, floor)
                 for c, sev in enumerate(self.severities)]
        cost = np.concatenate([p[0] for p in parts])
        scen = np.concatenate([p[1] for p in parts])
        cohort = np.concatenate([np.full(len(p[0]), c, dtype=np.int32)
                                 for c, p in enumerate(parts)])
        return ScenarioSet(n, floor, cost, scen, cohort, self._special())

    def save(self, directory: Path) -> Path:
        """Write the forecast (joblib, for `ciplan optimize`) atomically into `directory`."""
        with atomic_dir(Path(directory)) as tmp:
            joblib.dump(self, tmp / FORECAST_FILE)
        return Path(directory)

    @staticmethod
    def load(directory: Path) -> Forecast:
        from forecasting.errors import InputError
        path = Path(directory) / FORECAST_FILE
        if not path.exists():
            raise InputError(f"{directory}: no {FORECAST_FILE}; expected a `ciplan forecast` "
                             "output folder")
        return joblib.load(path)


def _k(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x / 1000:g}k"


def _draw_cohort(rng, sev: BlendedSeverity, lam: np.ndarray, mult: np.ndarray,
                 floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Costs above `floor` of one cohort in every scenario (cost level x mult[s])."""
    thr = floor / mult                       # floor in the cohort's unscaled costs
    z = sev.credibility if sev.costs.size else 0.0
    par = sev.parametric
    f_thr = par.cdf(thr)
    n_par = rng.poisson(lam * (1 - z) * (1 - f_thr))
    s_par = np.repeat(np.arange(len(lam)), n_par)
    u = f_thr[s_par] + rng.random(s_par.size) * (1 - f_thr[s_par])
    x_par = par.ppf(np.minimum(u, 1 - 1e-15)) * mult[s_par]
    if z == 0:
        return x_par, s_par
    emp = np.sort(sev.costs)
    start = np.searchsorted(emp, thr, side="right")
    n_emp = rng.poisson(lam * z * (emp.size - start) / emp.size)
    s_emp = np.repeat(np.arange(len(lam)), n_emp)
    idx = start[s_emp] + (rng.random(s_emp.size) * (emp.size - start[s_emp])).astype(int)
    x_emp = emp[np.minimum(idx, emp.size - 1)] * mult[s_emp]
    return np.concatenate([x_par, x_emp]), np.concatenate([s_par, s_emp])
