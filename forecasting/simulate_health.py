"""A second simulated portfolio, shaped unlike L city, for the same recovery tests.

A health portfolio of working-age members (18-79), written the way such data come:
- cohort keys sex and district (and a plan type), no residence or special-group column;
- one members row per policy: two-year policies (`period_start`, `period_end`, the last
  day covered) starting on any day and renewed or not, so the loader must cut them into
  calendar years; ages as `birth_year`;
- claims dated by `service_date` (no year column), one row per claim;
- costs about a hundred times smaller than L city's (a median near 45 units);
- claim counts that carry an age x sex interaction: women aged 25-39 claim three times as
  often as men of that age (log 3), at other ages the sexes differ by `sex_male` only.

Process, per member-year with exposure e: the number of claims is Poisson(lambda e),
log lambda = log base + age_slope (age - 45) / 10 + sex_male [M] + district effect
+ log 3 [F, 25-39] + trend (t - first year); the member-year is a claimant when it has a
claim. Its annual cost is scale(cohort, year) x X0 with X0 spliced: lognormal(mu, sigma)
below `splice` with probability 1 - tail_prob, Pareto(splice, alpha) above it; log scale =
sev_age (age - 45) / 10 + district effect + sev_trend (t - first year). The annual cost is
split over the member-year's claims (Dirichlet shares), each dated in the covered part of
the year. `report_from(threshold)` keeps only member-years whose annual cost is at or
above a threshold, as an insurer that sees only large claims would hold them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecasting.models.spliced import SplicedSeverity

DISTRICTS = ("D1", "D2", "D3", "D4")
PLAN_TYPES = ("basic", "plus")
AGES = (18, 80)  # members are 18-79 at a policy's start


@dataclass(frozen=True)
class HealthTruth:
    """Generating parameters (claims per member-year; costs in the portfolio's units)."""

    seed: int
    members: int
    years: tuple[int, ...]
    freq_base: float = 0.12             # claims per member-year at 45, F, D1, first year
    age_slope: float = 0.25             # log-frequency per 10 years of age
    sex_male: float = -0.10
    young_women: float = math.log(3.0)  # extra log-frequency, women aged 25-39
    district: tuple[float, ...] = (0.0, 0.15, -0.10, 0.30)
    freq_trend: float = 0.02
    sev_mu: float = math.log(45.0)      # lognormal body of X0
    sev_sigma: float = 1.0
    splice: float = 600.0               # where the Pareto tail starts (units of X0)
    tail_prob: float = 0.03
    tail_alpha: float = 2.2
    sev_age: float = 0.08               # log-scale per 10 years of age
    sev_district: tuple[float, ...] = (0.0, -0.05, 0.10, 0.05)
    sev_trend: float = 0.03
    renewal: float = 0.85               # probability a policy is renewed at its end

    def log_frequency(self, age, male, district, year) -> np.ndarray:
        """log lambda (claims per member-year) for arrays of member attributes."""
        age = np.asarray(age, dtype="float64")
        young_f = (~np.asarray(male, dtype=bool)) & (age >= 25) & (age < 40)
        return (math.log(self.freq_base) + self.age_slope * (age - 45) / 10
                + self.sex_male * np.asarray(male) + np.asarray(self.district)[district]
                + self.young_women * young_f + self.freq_trend * (np.asarray(year)
                                                                  - self.years[0]))

    def log_scale(self, age, district, year) -> np.ndarray:
        """log of the cohort's cost scale (X = scale x X0)."""
        return (self.sev_age * (np.asarray(age, dtype="float64") - 45) / 10
                + np.asarray(self.sev_district)[district]
                + self.sev_trend * (np.asarray(year) - self.years[0]))

    def standard_severity(self) -> SplicedSeverity:
        return SplicedSeverity(self.sev_mu, self.sev_sigma, self.splice, self.tail_prob,
                               self.tail_alpha)


@dataclass(frozen=True)
class HealthPortfolio:
    """Policies (members), claims, the truth and the realised member-years behind them."""

    members: pd.DataFrame      # one row per policy period
    claims: pd.DataFrame       # one row per claim, dated by service_date
    truth: HealthTruth
    member_years: pd.DataFrame = field(repr=False)  # the truth per member-year (for tests)

    def report_from(self, threshold: float) -> HealthPortfolio:
        """Only member-years whose annual cost is at or above `threshold` keep their
        claims (the data an insurer reporting large claims holds)."""
        my = self.member_years
        kept = my.loc[my["cost"] >= threshold, ["member_id", "year"]]
        year = pd.to_datetime(self.claims["service_date"]).dt.year
        keep = self.claims.assign(year=year).merge(kept, on=["member_id", "year"],
                                                   how="inner")
        return HealthPortfolio(self.members, keep.drop(columns="year"), self.truth,
                               self.member_years)

    def truth_dict(self) -> dict:
        return asdict(self.truth)


def _policies(truth: HealthTruth, rng: np.random.Generator) -> pd.DataFrame:
    """Two-year policies from a first start in the first year, renewed with probability
    `renewal`, until past the last year."""
    n = truth.members
    start = pd.Timestamp(f"{truth.years[0]}-01-01") + pd.to_timedelta(
        rng.integers(0, 365, n), unit="D")
    rows = []
    ids = np.arange(1, n + 1)
    end_of_data = pd.Timestamp(f"{truth.years[-1]}-12-31")
    alive = np.ones(n, dtype=bool)
    while alive.any():
        stop = start + pd.DateOffset(years=2) - pd.Timedelta(days=1)
        rows.append(pd.DataFrame({"member_id": ids[alive], "period_start": start[alive],
                                  "period_end": stop[alive].where(stop[alive] <= end_of_data,
                                                                  end_of_data)}))
        start = stop + pd.Timedelta(days=1)
        alive &= (rng.random(n) < truth.renewal) & (start <= end_of_data)
    return pd.concat(rows, ignore_index=True)


def simulate_health(seed: int = 7, members: int = 20_000,
                    years: tuple[int, ...] = (2020, 2021, 2022, 2023)) -> HealthPortfolio:
    """Simulate the portfolio (see module doc)."""
    truth = HealthTruth(seed=seed, members=members, years=tuple(years))
    rng = np.random.default_rng(seed)
    person = pd.DataFrame({
        "member_id": np.arange(1, members + 1),
        "birth_year": years[0] - rng.integers(AGES[0], AGES[1], members),
        "sex": np.where(rng.random(members) < 0.5, "M", "F"),
        "district": rng.choice(len(DISTRICTS), members, p=[0.4, 0.25, 0.2, 0.15]),
        "plan_type": rng.choice(PLAN_TYPES, members, p=[0.7, 0.3]),
    })
    policies = _policies(truth, rng).merge(person, on="member_id")
    my = _member_years(policies, years)
    my["claims"] = rng.poisson(np.exp(truth.log_frequency(
        my["age"], my["sex"] == "M", my["district"], my["year"])) * my["exposure"])
    claimant = my["claims"] > 0
    x0 = truth.standard_severity().sample(rng, int(claimant.sum()))
    scale = np.exp(truth.log_scale(my.loc[claimant, "age"], my.loc[claimant, "district"],
                                   my.loc[claimant, "year"]))
    my["cost"] = 0.0
    my.loc[claimant, "cost"] = np.round(scale * x0, 2)
    claims = _claim_rows(my[my["claims"] > 0], rng)
    out = policies.assign(district=np.array(DISTRICTS)[policies["district"]])
    out["period_start"] = out["period_start"].dt.date
    out["period_end"] = out["period_end"].dt.date
    my["district"] = np.array(DISTRICTS)[my["district"]]
    return HealthPortfolio(out[["member_id", "period_start", "period_end", "birth_year", "sex",
                                "district", "plan_type"]], claims, truth, my)


def _member_years(policies: pd.DataFrame, years: tuple[int, ...]) -> pd.DataFrame:
    """Each policy cut at 1 January: exposure = covered days / days of the year (the
    same rule the loader applies, computed independently here)."""
    rows = []
    for year in years:
        first, last = pd.Timestamp(f"{year}-01-01"), pd.Timestamp(f"{year}-12-31")
        begin = policies["period_start"].clip(lower=first)
        stop = policies["period_end"].clip(upper=last)
        days = (stop - begin).dt.days + 1
        inside = days > 0
        part = policies[inside].assign(year=year, days=days[inside],
                                       begin=begin[inside], stop=stop[inside])
        rows.append(part)
    my = pd.concat(rows, ignore_index=True)
    my = my.groupby(["member_id", "year"], as_index=False).agg(
        days=("days", "sum"), begin=("begin", "min"), stop=("stop", "max"),
        birth_year=("birth_year", "first"), sex=("sex", "first"),
        district=("district", "first"), plan_type=("plan_type", "first"))
    length = np.where(pd.to_datetime(my["year"].astype(str) + "-12-31").dt.is_leap_year,
                      366, 365)
    my["exposure"] = my["days"] / length
    my["age"] = my["year"] - my["birth_year"]
    return my


def _claim_rows(claimants: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Split each claimant's annual cost over its claims, each dated in its covered days."""
    n = claimants["claims"].to_numpy()
    owner = np.repeat(np.arange(len(claimants)), n)
    share = rng.exponential(size=len(owner))
    share /= np.bincount(owner, weights=share)[owner]
    cents = np.round(claimants["cost"].to_numpy() * 100).astype("int64")
    spare = np.maximum(cents - n, 0)  # a cent for every claim first: no claim costs 0
    piece = 1 + np.floor(share * spare[owner]).astype("int64")
    last = np.r_[np.flatnonzero(np.diff(owner)), len(owner) - 1]
    piece[last] += cents - np.bincount(owner, weights=piece, minlength=len(n)).astype("int64")
    span = (claimants["stop"] - claimants["begin"]).dt.days.to_numpy()
    day = (rng.random(len(owner)) * (span[owner] + 1)).astype("int64")
    date = claimants["begin"].to_numpy()[owner] + day.astype("timedelta64[D]")
    return pd.DataFrame({"member_id": claimants["member_id"].to_numpy()[owner],
                         "service_date": pd.to_datetime(date).date,
                         "eligible_cost": piece / 100})
