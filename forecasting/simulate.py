"""The built-in L city: a documented generating process calibrated to the seed's accounts.

Process, for each person of the eligible population (residents who could enrol):
- demography: an age pyramid of residents' insurance (many children, middle-aged and
  elderly rural residents; employees are in another scheme); each year everybody ages,
  some die (Gompertz mortality) or move away, newborns and incomers arrive;
- health: a lifelong frailty z ~ N(0, 1) multiplies claim frequency by exp(s z - s^2/2);
- enrolment with adverse selection: P(enrol in year t) = logistic(a_t + b z + h u), u a
  personal habit; a_t is set so the insured rate follows the seed (93 %, 91 %, 88 %), so as
  the rate falls it is mostly the healthy (low z) who leave;
- frequency: a member-year with exposure e is a claimant (annual eligible cost > 0) with
  probability 1 - exp(-lambda e), log lambda = log base + age curve (log-linear in age, an
  infant bump) + sex, residence and special-group effects + trend (t - 2019) + frailty;
- severity: cost = scale(cohort, year) * X0, X0 spliced: lognormal body below u with
  probability 1 - pi, Pareto(alpha) tail above u with probability pi; the cohort scale has a
  middle-age peak (cancer and heart treatment), sex/residence/special effects and a
  medical-cost trend; a year's cost index is calibrated (below);
- settlements: a claimant's annual cost is split over 1 + Poisson(0.8) hospital
  settlements with dates in the year; `paid` is what the plan in force paid on each.

Calibration: for 2019-2021 the year's cost index c_t is solved so that the plan in force
gives exactly the insurer's reported loss (CNY 3.86 M, 2.33 M, 11.15 M, per insured head
at other scales): the accounts pin the level, the process gives the shape. A held-out year
after 2021 uses the trend and the geometric mean of the calibrated indices, so its
outcome is a genuine draw of the same process. Random streams are keyed by (seed, year),
so adding a year never changes the years before it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from forecasting.data.cohorts import RESIDENCES, SEXES
from forecasting.errors import UserError
from forecasting.models.spliced import SplicedSeverity
from forecasting.scheme.in_force import Market, Scheme
from forecasting.scheme.plan import Plan, SpecialRules, member_payouts

SEED_YEARS = (2019, 2020, 2021)
# The seed's accounts (DESIGN §1): eligible residents, insured, premium, loss (CNY).
SEED_ELIGIBLE = {2019: 2_250_000, 2020: 2_240_000, 2021: 2_230_000, 2022: 2_220_000}
SEED_INSURED = {2019: 2_100_000, 2020: 2_040_000, 2021: 1_960_000, 2022: 1_890_000}
SEED_PREMIUM = {2019: 58.0, 2020: 60.0, 2021: 60.0, 2022: 60.0}
SEED_LOSS = {2019: 3_860_000.0, 2020: 2_330_000.0, 2021: 11_150_000.0}
SEED_INCOME = {2019: 30_000.0, 2020: 30_600.0, 2021: 31_500.0, 2022: 32_400.0}
OPEX_SHARE = 0.04

# Residents' age pyramid: weight of each 5-year band 0-4 ... 80-84, then 85+ (85-99).
AGE_WEIGHTS = (5.5, 6.5, 6.5, 5.5, 4.5, 4.0, 4.5, 6.0, 8.0, 9.0, 9.0, 8.5, 7.0, 4.5, 3.5,
               2.5, 1.5, 1.0)


@dataclass(frozen=True)
class Truth:
    """Generating parameters of the simulated city (frequency per member-year, costs in CNY)."""

    seed: int
    scale: float
    years: tuple[int, ...]
    freq_base: float = 0.060          # claimant rate at age 40, female, urban, 2019, z = 0
    freq_age_slope: float = 0.022     # log-frequency per year of age
    freq_infant: float = 0.9          # extra log-frequency at age 0, fading by age 5
    freq_male: float = 0.08
    freq_rural: float = -0.08
    freq_special: float = 0.30
    freq_trend: float = 0.01          # log-frequency per calendar year
    frailty_sd: float = 0.6
    enrol_frailty: float = 0.7        # adverse selection: log-odds of enrolling per unit z
    enrol_habit: float = 1.5
    sev_median: float = 4_500.0       # median of the lognormal body, before scaling
    sev_sigma: float = 1.1
    tail_threshold: float = 60_000.0  # u, where the Pareto tail starts
    tail_prob: float = 0.012          # pi = P(X0 > u)
    tail_alpha: float = 2.5
    sev_age_peak: float = 52.5
    sev_age_curv: float = 0.0012      # log-scale falls by curv * (age - peak)^2
    sev_male: float = 0.05
    sev_rural: float = -0.10
    sev_special: float = 0.10
    sev_trend: float = 0.02           # medical-cost trend, log per calendar year
    cost_index: dict[int, float] = field(default_factory=dict)

    def log_frequency(self, age, male, rural, special, year, z=0.0):
        """log lambda per member-year for arrays of member attributes."""
        age = np.asarray(age, dtype="float64")
        return (math.log(self.freq_base) + self.freq_age_slope * (age - 40)
                + self.freq_infant * np.clip(1 - age / 5, 0, 1)
                + self.freq_male * male + self.freq_rural * rural
                + self.freq_special * special + self.freq_trend * (np.asarray(year) - 2019)
                + self.frailty_sd * z - self.frailty_sd**2 / 2)

    def log_scale(self, age, male, rural, special, year):
        """log of the cohort's severity scale (X = scale * X0), before the cost index."""
        age = np.asarray(age, dtype="float64")
        return (-self.sev_age_curv * (age - self.sev_age_peak) ** 2 + self.sev_male * male
                + self.sev_rural * rural + self.sev_special * special
                + self.sev_trend * (np.asarray(year) - 2019))

    def standard_severity(self) -> SplicedSeverity:
        """X0: lognormal body below u, Pareto tail above (before the cohort scale)."""
        return SplicedSeverity(math.log(self.sev_median), self.sev_sigma, self.tail_threshold,
                               self.tail_prob, self.tail_alpha)


@dataclass(frozen=True)
class City:
    """A simulated city: member-years, settlements, the scheme per year and the truth."""

    members: pd.DataFrame
    claims: pd.DataFrame
    scheme: Scheme
    truth: Truth
    realised: pd.DataFrame  # per year: expected and drawn claimants, calibrated index

    def truth_dict(self) -> dict:
        out = asdict(self.truth)
        out["cost_index"] = {str(k): v for k, v in self.truth.cost_index.items()}
        out["by_year"] = self.realised.to_dict(orient="records")
        return out


def lcity_plan(premium: float) -> Plan:
    """L city's plan in force (DESIGN §1): deductible 15 k, 60-75 % bands, cap 300 k."""
    return Plan(premium_per_capita=premium, deductible=15_000.0,
                band_edges=(50_000.0, 100_000.0, 200_000.0), ratios=(0.60, 0.65, 0.70, 0.75),
                cap=300_000.0, special=SpecialRules(0.5, 0.05, None))


def lcity_scheme(years: tuple[int, ...], scale: float = 1.0) -> Scheme:
    """Plan in force and market of each simulated year (a held-out 2022 keeps the 2021 plan)."""
    plans = {y: lcity_plan(SEED_PREMIUM.get(y, 60.0)) for y in years}
    markets = {y: Market(round(SEED_ELIGIBLE.get(y, 2_220_000) * scale),
                         SEED_INCOME.get(y, 32_400.0), 0.0, OPEX_SHARE) for y in years}
    return Scheme(plans, markets)


def _rng(seed: int, year: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, year, stream]))


class _Population:
    """Persons alive and eligible, evolving year to year (arrays, one entry per person)."""

    def __init__(self, truth: Truth, n: int, rng: np.random.Generator):
        self.truth = truth
        self.next_id = 1
        self.cols: dict[str, np.ndarray] = {}
        self._add(self._newcomers(n, rng))

    def _newcomers(self, n: int, rng: np.random.Generator, age=None) -> dict[str, np.ndarray]:
        if age is None:
            w = np.array(AGE_WEIGHTS) / sum(AGE_WEIGHTS)
            band = rng.choice(len(w), size=n, p=w)
            width = np.where(band == len(w) - 1, 15, 5)
            age = band * 5 + (rng.random(n) * width).astype("int64")
        rural = rng.random(n) < 0.6
        special_p = 0.03 + 0.02 * rural + 0.03 * (age >= 60)
        return {
            "member_id": np.arange(self.next_id, self.next_id + n, dtype="int64"),
            "age": np.asarray(age, dtype="int64"),
            "male": rng.random(n) < 0.5,
            "rural": rural,
            "special": rng.random(n) < special_p,
            "z": rng.standard_normal(n),
            "habit": rng.standard_normal(n),
            "entry": np.zeros(n),
        }

    def _add(self, new: dict[str, np.ndarray]) -> None:
        self.next_id += len(new["member_id"])
        self.cols = {k: np.concatenate([self.cols.get(k, v[:0]), v]) for k, v in new.items()}

    def keep(self, mask: np.ndarray) -> None:
        self.cols = {k: v[mask] for k, v in self.cols.items()}

    def advance(self, target: int, rng: np.random.Generator) -> np.ndarray:
        """Age everybody a year; return exit times (fraction of the year, 1 = stays)."""
        c = self.cols
        c["age"] = c["age"] + 1
        c["entry"] = np.zeros(len(c["age"]))
        q = np.minimum(0.0004 * np.exp(0.085 * (c["age"] - 30)), 0.5)
        leaves = (rng.random(len(q)) < q) | (rng.random(len(q)) < 0.006)
        exit_time = np.where(leaves, rng.random(len(q)), 1.0)
        births = int(0.009 * target)
        # Everybody present at some time in the year counts as eligible that year; the
        # population is held at the seed's size by people moving in or away.
        surplus = len(q) + births - target
        if surplus > 0:
            away = rng.choice(len(q), size=surplus, replace=False)
            self.keep(~np.isin(np.arange(len(q)), away))
            exit_time = np.delete(exit_time, away)
        incomers = max(-surplus, 0)
        newborns = self._newcomers(births, rng, age=np.zeros(births, dtype="int64"))
        newborns["entry"] = rng.random(births)
        self._add(newborns)
        self._add(self._newcomers(incomers, rng))
        return np.concatenate([exit_time, np.ones(births + incomers)])


def _enrol(truth: Truth, pop: _Population, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Who enrols this year: adverse selection on frailty, intercept hit to the seed's rate."""
    from scipy.optimize import brentq  # imported when simulating, not with the command line

    c = pop.cols
    score = truth.enrol_frailty * c["z"] + truth.enrol_habit * c["habit"]
    a = brentq(lambda a: expit(a + score).mean() - rate, -20, 20)
    return rng.random(len(score)) < expit(a + score)


def _calibrate(plan: Plan, base_cost: np.ndarray, special: np.ndarray, target: float) -> float:
    """The cost index c with sum of payouts of c * base_cost equal to `target` (CNY)."""
    from scipy.optimize import brentq

    def gap(c: float) -> float:
        return float(member_payouts(plan, c * base_cost, special).sum()) - target
    lo, hi = 0.2, 5.0
    if gap(lo) > 0:  # even a fifth of the cost level pays too much: keep the bound
        return lo
    if gap(hi) < 0:
        return hi
    return brentq(gap, lo, hi, xtol=1e-10, rtol=1e-12)


def _settlements(rng, member_id, year, cost, special, plan, lag_rng) -> pd.DataFrame:
    """Split annual costs over hospital settlements, with the dates of care and of
    settlement and what the plan paid."""
    k = 1 + rng.poisson(0.8, len(cost))
    owner = np.repeat(np.arange(len(cost)), k)
    w = rng.exponential(size=len(owner))
    share = w / np.bincount(owner, weights=w)[owner]
    cents = np.round(cost * 100).astype("int64")
    piece = np.floor(share * cents[owner]).astype("int64")
    last = np.r_[np.flatnonzero(np.diff(owner)), len(owner) - 1]
    piece[last] += cents - np.bincount(owner, weights=piece).astype("int64")
    day = rng.integers(0, 365, len(owner))
    order = np.lexsort((day, owner))
    owner, piece, day = owner[order], piece[order], day[order]
    cum = np.cumsum(piece) - np.repeat(np.cumsum(cents) - cents, k)
    paid_cum = member_payouts(plan, cum / 100, special[owner])
    paid = np.diff(np.r_[0.0, paid_cum])
    first = np.r_[0, np.cumsum(k)[:-1]]
    paid[first] = paid_cum[first]
    service = pd.Timestamp(f"{year}-01-01") + pd.to_timedelta(day, unit="D")
    settled = service + pd.to_timedelta(_settlement_lags(lag_rng, piece / 100), unit="D")
    return pd.DataFrame({
        "member_id": member_id[owner], "year": year, "service_date": service.date,
        "settlement_date": settled.date, "eligible_cost": piece / 100,
        "paid": np.round(paid, 2),
    })


def _settlement_lags(rng: np.random.Generator, cost: np.ndarray) -> np.ndarray:
    """Days from care to settlement: most within a month (3 days + an exponential of mean
    12), a tail of months (30 days + a gamma of mean 150) that is likelier for large bills
    (8 % plus up to 25 % more as the bill reaches 100 k): a December stay of a heavy case is
    often settled in spring."""
    n = len(cost)
    long = rng.random(n) < 0.08 + 0.25 * np.minimum(cost / 100_000.0, 1.0)
    short = 3 + rng.exponential(12.0, n)
    slow = 30 + rng.gamma(2.0, 75.0, n)
    return np.round(np.where(long, slow, short)).astype("int64")


def simulate_city(seed: int = 2019, scale: float = 1.0,
                  years: tuple[int, ...] = SEED_YEARS) -> City:
    """Simulate L city for `years` (consecutive, from 2019) at `scale` of its population."""
    years = tuple(sorted(years))
    if years[0] != 2019 or list(years) != list(range(2019, years[-1] + 1)):
        raise UserError(f"years must run consecutively from 2019; got {years}")
    if not 0 < scale <= 10:
        raise UserError(f"scale must be in (0, 10]; got {scale}")
    truth = Truth(seed=seed, scale=scale, years=years)
    scheme = lcity_scheme(years, scale)
    pop = _Population(truth, scheme.market(2019).eligible_population, _rng(seed, 2019, 0))
    exit_time = np.ones(len(pop.cols["age"]))
    members, claims, realised, index = [], [], [], {}
    for year in years:
        if year > 2019:
            pop.keep(exit_time == 1.0)
            exit_time = pop.advance(scheme.market(year).eligible_population,
                                    _rng(seed, year, 0))
        c = pop.cols
        rate = SEED_INSURED.get(year, 1_890_000) / SEED_ELIGIBLE.get(year, 2_220_000)
        insured = _enrol(truth, pop, rate, _rng(seed, year, 1))
        exposure = np.clip(np.minimum(exit_time, 1.0) - c["entry"], 0.01, 1.0)[insured]
        ages, male = c["age"][insured], c["male"][insured]
        rural, special = c["rural"][insured], c["special"][insured]
        lam = np.exp(truth.log_frequency(ages, male, rural, special, year, c["z"][insured]))
        p_claim = 1 - np.exp(-lam * exposure)
        rng = _rng(seed, year, 2)
        is_claimant = rng.random(len(p_claim)) < p_claim
        base = (np.exp(truth.log_scale(ages, male, rural, special, year)[is_claimant])
                * truth.standard_severity().sample(rng, int(is_claimant.sum())))
        plan = scheme.plan(year)
        if year in SEED_LOSS:
            n = int(insured.sum())
            premium = plan.premium_per_capita * n
            loss = SEED_LOSS[year] * n / SEED_INSURED[year]
            target = loss + premium - scheme.market(year).operating_cost(premium)
            index[year] = _calibrate(plan, base, special[is_claimant], target)
        else:
            index[year] = float(np.exp(np.mean(np.log([index[y] for y in SEED_LOSS]))))
        cost = index[year] * base
        ids = c["member_id"][insured]
        members.append(pd.DataFrame({
            "member_id": ids, "year": year, "age": ages,
            "sex": pd.Categorical.from_codes(male.astype("int8"), SEXES),
            "residence": pd.Categorical.from_codes(rural.astype("int8"), RESIDENCES),
            "special_group": special, "exposure": np.round(exposure, 4),
        }))
        claims.append(_settlements(_rng(seed, year, 3), ids[is_claimant], year, cost,
                                   special[is_claimant], plan, _rng(seed, year, 4)))
        realised.append({"year": year, "eligible": len(insured), "insured": int(insured.sum()),
                         "expected_claimants": float(p_claim.sum()),
                         "claimants": int(is_claimant.sum()), "cost_index": index[year]})
    truth = Truth(seed=seed, scale=scale, years=years, cost_index=index)
    return City(pd.concat(members, ignore_index=True), pd.concat(claims, ignore_index=True),
                scheme, truth, pd.DataFrame(realised))
