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

import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecasting.data.cohorts import CohortSpec
from forecasting.data.options import MAX_COST_LIMIT
from forecasting.data.publish import publish, read_manifest
from forecasting.errors import InputError
from forecasting.scheme.plan import Plan, member_payouts

if TYPE_CHECKING:  # the severity models bring scikit-learn and SciPy: imported on use, so
    # that reading a forecast's provenance (a re-run with nothing to do) does not load them
    from forecasting.models.severity import BlendedSeverity

# The forecast folder's format: forecast.json (parameters) beside Parquet tables; data only,
# so opening a folder from the other side of the table runs no code.
FORMAT, VERSION = "ciplan.forecast", 1
PARAMETERS_FILE = "forecast.json"
COHORTS_FILE, COSTS_FILE = "cohorts.parquet", "severity_costs.parquet"
MATRIX_FILES = {"freq_design": "frequency_design.parquet",
                "freq_covariance": "frequency_covariance.parquet"}
LEGACY_FILE = "forecast.joblib"  # the old pickle format, refused unopened
LAYER_QUANTILES = (0.5, 0.75, 0.9, 0.97, 0.99)  # layer edges without a plan: cost quantiles
COVERAGE = 0.90  # the ranges printed beside expected values
# what a forecast read from outside may hold (from_dict): beyond these it is no forecast
YEARS = (1900, 2200)  # calendar years, as the data contract reads them
MAX_SPREAD = 5.0  # log sd of a systemic effect (a factor of about 150 at one sd)
MAX_HEADS = 1e10  # persons, member-years or claimants of one cohort
COHORT_NUMBERS = {"insured": MAX_HEADS, "exposure": MAX_HEADS, "claimants": MAX_HEADS,
                  "claims": MAX_HEADS, "frequency": MAX_HEADS, "reported_share": 1.0,
                  "mean_severity": MAX_COST_LIMIT}  # column -> largest value (money units)


def money_label(x: float) -> str:
    """A cost level for a column name, in the data's own unit: 150, 1.5k, 15k, 1.5M, inf."""
    if np.isinf(x):
        return "inf"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def round_level(x: float) -> float:
    """A cost level rounded to two significant digits (what a layer table shows)."""
    if x <= 0 or not np.isfinite(x):
        return float(x)
    digits = 1 - int(np.floor(np.log10(x)))
    return float(round(x, digits))


PAYOUT_CHUNK = 1 << 21  # costs priced at a time (16 MB a float array: reused, not faulted)


def plan_levels(plan: Plan) -> list[float]:
    """The cost levels where a plan's payout changes slope, for ordinary and special
    members: deductibles, band edges and the costs at which the caps bind."""
    levels = []
    for p in (plan, plan.for_special_group()):
        levels += [p.deductible, *p.band_edges, p.capped_cost()]
    return sorted({float(x) for x in levels if np.isfinite(x) and x > 0})


def interval(samples: np.ndarray, expected: float, coverage: float = COVERAGE
             ) -> tuple[float, float]:
    """A `coverage` range of the simulated values that holds `expected`: the central one
    (5th to 95th percentile for 90 %), shifted, keeping its coverage, towards the expected
    value when it lies outside (a cohort with rare, heavy claims has most of its mass at 0
    and its mean above the 95th percentile), and stretched to the expected value only when
    no shift reaches it (too few scenarios to see the tail)."""
    samples = np.sort(np.asarray(samples, dtype="float64"))
    tail = (1 - coverage) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    if expected > high:
        start = min(float(np.mean(samples < expected)) - coverage, 1 - coverage)
        low, high = np.quantile(samples, [max(start, 0.0), max(start, 0.0) + coverage])
    elif expected < low:
        start = max(float(np.mean(samples <= expected)), 0.0)
        low, high = np.quantile(samples, [min(start, 1 - coverage),
                                          min(start, 1 - coverage) + coverage])
    return float(min(low, expected)), float(max(high, expected))


def payout_per_claimant(plan: Plan, severity: BlendedSeverity) -> float:
    """Expected annual payout (CNY) to one claimant with this severity under `plan`."""
    return float(payouts_per_claimant(plan, [severity])[0])


def payouts_per_claimant(plan: Plan, severities) -> np.ndarray:
    """Expected annual payout (CNY) to one claimant of each severity under `plan`: the
    ratio of each band times the expected cost inside it, up to the cap."""
    from forecasting.models.severity import lev_matrix

    x_cap = plan.capped_cost()
    lower = np.minimum(plan.lower_edges, x_cap)
    upper = np.minimum(plan.upper_edges, x_cap)
    # one call for both ends of every band and every severity
    lev = lev_matrix(severities, np.concatenate([upper, lower]))
    return (lev[:, :len(upper)] - lev[:, len(upper):]) @ np.asarray(plan.ratios, dtype="float64")


@dataclass(frozen=True)
class ScenarioSet:
    """Simulated annual costs above `floor` (money units of the data) in n scenarios of the
    forecast year, and each scenario's insured head count (`insured`, length n: enrolment
    is uncertain too)."""

    n: int
    floor: float
    cost: np.ndarray
    scenario: np.ndarray
    cohort: np.ndarray
    special: np.ndarray  # per cohort
    insured: np.ndarray | None = None  # per scenario
    floors: np.ndarray | None = None  # per cohort, when drawn with one floor per cohort

    def cohort_floors(self) -> np.ndarray:
        """Each cohort's floor (money): the costs above it are all in the set."""
        return np.full(len(self.special), self.floor) if self.floors is None else self.floors

    def group_floor(self, special: bool) -> float:
        """The floor of the ordinary (special=False) or special-group members' costs: the
        highest of their cohorts'. A group without a cohort (no special group, or only
        special ones) holds no cost, so any deductible prices it: its floor is 0."""
        mine = self.cohort_floors()[self.special == special]
        return float(mine.max()) if mine.size else 0.0

    def covers(self, plan: Plan) -> bool:
        """Whether the set holds every cost the plan's payout depends on: each cohort's
        floor at or below the deductible its members get (ordinary or special)."""
        low = min(plan.deductible, plan.for_special_group().deductible)
        if self.floors is None:
            return low >= self.floor
        need = np.where(self.special, plan.for_special_group().deductible, plan.deductible)
        return bool((self.floors <= need).all())

    def check_covers(self, plan: Plan) -> None:
        """Scenarios price a plan only if they hold every cost its payout depends on: an
        error, not a range, when a deductible lies below the floor."""
        if self.covers(plan):
            return
        for special, who in ((False, "ordinary members'"), (True, "special groups'")):
            d = (plan.for_special_group() if special else plan).deductible
            above = self.cohort_floors()[self.special == special]
            if above.size and above.max() > d:
                raise ValueError(f"scenarios hold the {who} costs above {above.max():g} "
                                 f"only; the plan's {who} deductible is {d:g}: draw them "
                                 f"with floor <= {d:g}")

    def payouts(self, plan: Plan) -> np.ndarray:
        """Total payout in each scenario; exact when every deductible is >= floor."""
        self.check_covers(plan)
        return self.payout_sums(plan)

    def payouts_by_cohort(self, plan: Plan, n_cohorts: int) -> np.ndarray:
        """Payout per scenario and cohort, shape (n, n_cohorts); as exact as `payouts`."""
        self.check_covers(plan)
        return self.payout_sums(plan, n_cohorts).reshape(self.n, n_cohorts)

    def payout_sums(self, plan: Plan, n_cohorts: int | None = None) -> np.ndarray:
        """The members' payouts summed by scenario (or by scenario x cohort, flat), chunk
        by chunk: tens of millions of costs priced at once took gigabytes of temporaries,
        and the time to fault their pages in was more than the arithmetic's."""
        size = self.n if n_cohorts is None else self.n * n_cohorts
        out = np.zeros(size)
        for lo in range(0, self.cost.size, PAYOUT_CHUNK):
            part = slice(lo, lo + PAYOUT_CHUNK)
            cohort = self.cohort[part]
            paid = member_payouts(plan, self.cost[part], self.special[cohort])
            where = self.scenario[part] if n_cohorts is None else (
                self.scenario[part].astype(np.int64) * n_cohorts + cohort)  # no overflow
            out += np.bincount(where, weights=paid, minlength=size)
        return out


@dataclass(frozen=True)
class Forecast:
    """Claims of one future year by cohort (see module doc). Money in the data's units.

    insured_sd: standard deviation of log(insured total) around its projection (enrolment
    uncertainty in the scenarios). reported_above: the data's reporting threshold (0: all
    costs reported); claimants and layers are ground-up, and `layer_table(per="reported")`
    prices per claimant above the threshold.
    """

    year: int
    spec: CohortSpec
    cohorts: pd.DataFrame  # keys, insured, exposure, frequency, claimants, mean_severity
    severities: tuple[BlendedSeverity, ...]
    freq_design: np.ndarray | None  # [1, design] rows, for GLM coefficient draws
    freq_covariance: np.ndarray | None
    freq_year_sd: float
    sev_year_sd: float
    provenance: dict = field(default_factory=dict)
    insured_sd: float = 0.0
    reported_above: float = 0.0

    @property
    def insured(self) -> float:
        return float(self.cohorts["insured"].sum())

    @property
    def currency(self) -> str:
        """The money unit of every amount (`[data] currency`, recorded in the provenance;
        the contract's default for a forecast made before it was)."""
        from forecasting.config import DEFAULT_CURRENCY

        return str(self.provenance.get("currency") or DEFAULT_CURRENCY)

    def _special(self) -> np.ndarray:
        if "special_group" not in self.cohorts:
            return np.zeros(len(self.cohorts), dtype=bool)
        return self.cohorts["special_group"].to_numpy(dtype=bool)

    def _by_terms(self, plan: Plan):
        """(terms, cohort rows, their severities) for ordinary members under `plan` and
        for the special groups under its special terms, each group that has a cohort."""
        special = self._special()
        for terms, rows in ((plan, ~special), (plan.for_special_group(), special)):
            if rows.any():
                yield terms, rows, [self.severities[i] for i in np.flatnonzero(rows)]

    def payout_by_cohort(self, plan: Plan) -> np.ndarray:
        """Expected payout (CNY) per cohort; special groups get the special terms."""
        out = np.zeros(len(self.severities))
        for terms, rows, severities in self._by_terms(plan):
            out[rows] = payouts_per_claimant(terms, severities)
        return self.cohorts["claimants"].to_numpy(dtype="float64") * out

    def expected_payout(self, plan: Plan) -> float:
        """Expected total payout of the year under `plan` (CNY)."""
        return float(self.payout_by_cohort(plan).sum())

    def deductibles(self, plan: Plan) -> np.ndarray:
        """Each cohort's deductible under `plan` (CNY): the special groups' their own."""
        return np.where(self._special(), plan.for_special_group().deductible, plan.deductible)

    def expected_above_deductible(self, plan: Plan) -> float:
        """Expected eligible cost above each member's deductible (CNY), special ones lower."""
        from forecasting.models.severity import lev_matrix

        n = self.cohorts["claimants"].to_numpy(dtype="float64")
        total = 0.0
        for terms, rows, severities in self._by_terms(plan):
            lev = lev_matrix(severities, [terms.deductible, np.inf])
            total += float(n[rows] @ (lev[:, 1] - lev[:, 0]))
        return total

    def layer_levels(self, plan: Plan | None = None) -> list[float]:
        """Cost levels of the layer table: where `plan`'s payout changes slope, or, without
        a plan, the LAYER_QUANTILES of the year's claimant costs (two significant digits)."""
        if plan is not None:
            return plan_levels(plan)
        means = self.cohorts["mean_severity"]
        levels = {round_level(_solve_level(self.pooled_cdf, q, means)) for q in LAYER_QUANTILES}
        return sorted(x for x in levels if x > 0)

    def pooled_cdf(self, x: float) -> float:
        """P(X <= x) for a claimant of the year, cohorts weighted by expected claimants
        (parametric severities)."""
        w = self.cohorts["claimants"].to_numpy(float)
        cdf = np.array([float(sev.parametric.cdf(x)) for sev in self.severities])
        return float(w @ cdf / w.sum())

    def layer_table(self, plan: Plan | None = None, per: str = "claimant") -> pd.DataFrame:
        """Expected cost inside each layer between consecutive `layer_levels(plan)` (and
        from the last to infinity), by cohort: per claimant (ground-up), or per reported
        claimant (per="reported": given a cost above the reporting threshold)."""
        if per not in ("claimant", "reported"):
            raise ValueError(f"per must be 'claimant' or 'reported'; got {per!r}")
        edges = [0.0, *self.layer_levels(plan), np.inf]
        prefix = "layer" if per == "claimant" else "reported_layer"
        cols = {}
        for a, b in itertools.pairwise(edges):
            name = f"{prefix}_{money_label(a)}_{money_label(b)}"
            cols[name] = [self._layer(sev, a, b, per) for sev in self.severities]
        return pd.DataFrame(cols)

    def _layer(self, sev: BlendedSeverity, a: float, b: float, per: str) -> float:
        if per == "claimant" or self.reported_above <= 0:
            return sev.layer(a, b)
        return reported_layer(sev, a, b, self.reported_above)

    def scenarios(self, n: int, seed: int = 0, floor: float | np.ndarray = 0.0,
                  level: np.ndarray | None = None) -> ScenarioSet:
        """n joint draws of the year: enrolment, parameters, year effects (with the trend's
        uncertainty), claim counts and costs above `floor` (0: every cost; any plan whose
        deductibles are at or above the floor can then be priced). `floor` may be one per
        cohort (a cost below a cohort's deductible pays nothing: special groups' is lower);
        the set's floor is then the highest, above which it holds every cost. `level`: a
        further cost level per scenario (a later year's trend, length n, > 0) by which the
        costs are multiplied before the floor applies, so that each scenario draws only the
        costs that reach the floor at its own level."""
        insured_mult, floors, draws = self._draws(n, seed, floor, level)
        costs, scens = zip(*draws, strict=True)
        sizes = [len(x) for x in costs]
        # tens of millions of costs: each list is freed as soon as it is joined
        cost = np.concatenate(costs)
        del costs
        scen = np.concatenate(scens)
        del scens
        cohort = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
        return ScenarioSet(n, float(floors.max(initial=0.0)), cost, scen, cohort,
                           self._special(), self.insured * insured_mult,
                           None if np.ndim(floor) == 0 else floors.copy())

    def payouts_as_drawn(self, plan: Plan, n: int, seed: int = 0,
                         level: np.ndarray | None = None, floor: float | None = None,
                         by_cohort: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(payout, insured head count) of each of n scenarios of `plan`: the same draws as
        `scenarios(n, seed, floor, level)` (floor: the plan's deductibles unless given, at
        most its lowest), each cohort's costs priced as they are drawn and never gathered
        into one set (gathering tens of millions of costs cost time and memory). The
        payout is the scenario's total, or with `by_cohort` its (n, cohorts) table."""
        deductibles = self.deductibles(plan)
        floors = deductibles if floor is None else floor
        if np.any(np.asarray(floors) > deductibles):
            raise ValueError(f"a floor above the plan's deductibles ({floor}) leaves out "
                             "costs the plan pays")
        insured_mult, _, draws = self._draws(n, seed, floors, level)
        special_plan, special = plan.for_special_group(), self._special()
        paid_by = np.zeros((n, len(self.cohorts)) if by_cohort else n)
        for c, (cost, scen) in enumerate(draws):
            paid = np.bincount(scen, weights=(special_plan if special[c] else plan).payout(
                cost), minlength=n)
            if by_cohort:
                paid_by[:, c] = paid
            else:
                paid_by += paid
        return paid_by, self.insured * insured_mult

    def _draws(self, n: int, seed: int, floor: float | np.ndarray,
               level: np.ndarray | None):
        """The scenarios' random parts (see `scenarios`): the insured multiplier of each
        scenario, each cohort's floor, and an iterator of each cohort's (costs, scenario
        numbers), drawn in cohort order from one generator."""
        rng = np.random.default_rng(seed)
        k = len(self.cohorts)
        insured_mult = _mean_one(rng.normal(0, self.insured_sd, n), self.insured_sd**2)
        freq_mult = (_mean_one(rng.normal(0, self.freq_year_sd, n), self.freq_year_sd**2)
                     * insured_mult)[:, None] * np.ones((1, k))
        if self.freq_covariance is not None:
            shift = rng.multivariate_normal(np.zeros(len(self.freq_covariance)),
                                            self.freq_covariance, size=n, method="eigh")
            design = np.asarray(self.freq_design, dtype="float64")
            var = np.einsum("ij,jk,ik->i", design, self.freq_covariance, design)
            freq_mult = freq_mult * _mean_one(shift @ design.T, var[None, :])
        cost_mult = _mean_one(rng.normal(0, self.sev_year_sd, n), self.sev_year_sd**2)
        if level is not None:
            cost_mult = cost_mult * np.asarray(level, dtype="float64")
        lam = freq_mult * self.cohorts["claimants"].to_numpy(float)[None, :]
        floors = np.broadcast_to(np.asarray(floor, dtype="float64"), (k,))
        draws = (_draw_cohort(rng, sev, lam[:, c], cost_mult, floors[c])
                 for c, sev in enumerate(self.severities))
        return insured_mult, floors, draws

    def payout_ranges(self, plan: Plan, n: int, seed: int = 0,
                      coverage: float = COVERAGE) -> tuple[pd.DataFrame, dict]:
        """Expected payout and its `coverage` range per cohort (a frame: expected, low,
        high) and for the year (a dict, with the scenarios' mean), from n scenarios that
        hold every cost the plan's payout depends on (floor = its lowest deductible). Each
        range holds its own expected value (see `interval`)."""
        floor = min(plan.deductible, plan.for_special_group().deductible)
        sims = self.payouts_as_drawn(plan, n, seed, floor=floor, by_cohort=True)[0]
        expected = self.payout_by_cohort(plan)
        ranges = np.array([interval(sims[:, i], e, coverage) for i, e in enumerate(expected)])
        by_cohort = pd.DataFrame({"expected": expected, "low": ranges[:, 0],
                                  "high": ranges[:, 1]})
        totals = sims.sum(axis=1)
        low, high = interval(totals, float(expected.sum()), coverage)
        return by_cohort, {"expected": float(expected.sum()), "low": low, "high": high,
                           "scenario_mean": float(totals.mean()),
                           "scenario_se": float(totals.std() / np.sqrt(n))}

    # ------------------------------------------------------------ the exchange format

    def to_dict(self) -> dict:
        """The forecast as plain JSON data; `from_dict` is its inverse. The forecast folder
        is built from it (`write`), so a field added to a part shows up in the format."""
        matrix = {name: None if m is None else np.asarray(m, dtype="float64").tolist()
                  for name, m in (("freq_design", self.freq_design),
                                  ("freq_covariance", self.freq_covariance))}
        return {"year": int(self.year), "spec": {**asdict(self.spec), "keys": list(self.spec.keys)},
                "cohorts": _frame_to_dict(self.cohorts),
                "severities": [sev.to_dict() for sev in self.severities], **matrix,
                "freq_year_sd": float(self.freq_year_sd),
                "sev_year_sd": float(self.sev_year_sd), "provenance": self.provenance,
                "insured_sd": float(self.insured_sd),
                "reported_above": float(self.reported_above)}

    @classmethod
    def from_dict(cls, data: dict) -> Forecast:
        """The inverse of `to_dict`, for data from outside: ValueError, KeyError or
        TypeError when a part is missing, of the wrong shape or out of range."""
        from forecasting.models.severity import BlendedSeverity

        cohorts = _frame_from_dict(data["cohorts"])
        severities = tuple(BlendedSeverity.from_dict(d) for d in data["severities"])
        if len(severities) != len(cohorts):
            raise ValueError(f"{len(severities)} severities for {len(cohorts)} cohorts")
        spec = CohortSpec(int(data["spec"]["band_width"]), int(data["spec"]["age_max"]),
                          tuple(data["spec"]["keys"]))
        missing = set(spec.columns) - set(cohorts.columns)
        if missing:
            raise ValueError(f"cohorts lack columns {sorted(missing)}")
        design, cov = (_matrix(data[name]) for name in MATRIX_FILES)
        if (design is None) != (cov is None) or (design is not None and (
                design.shape[0] != len(cohorts) or cov.shape != (design.shape[1],) * 2)):
            raise ValueError("frequency design and covariance do not fit the cohorts")
        if cov is not None:
            _check_covariance(design, cov)
        year_sd = [float(data[k]) for k in ("freq_year_sd", "sev_year_sd")]
        extra = [float(data.get(k, 0.0)) for k in ("insured_sd", "reported_above")]
        if not (all(0 <= v <= MAX_SPREAD for v in [*year_sd, extra[0]])
                and 0 <= extra[1] <= MAX_COST_LIMIT):
            raise ValueError(f"spreads {year_sd + extra[:1]} and threshold {extra[1]}; "
                             f"expected spreads from 0 to {MAX_SPREAD} and a threshold from "
                             f"0 to {MAX_COST_LIMIT:g}")
        _check_cohort_numbers(cohorts)
        _check_cohort_keys(cohorts, spec)
        _check_means(severities)
        _check_provenance(data["provenance"])
        return cls(_calendar_year(data["year"]), spec, cohorts, severities, design, cov,
                   *year_sd, data["provenance"], *extra)

    def write(self, folder: Path) -> None:
        """Write the forecast into `folder` (one being published): forecast.json with the
        parameters, the cohorts, every cohort's past costs and the frequency matrices as
        Parquet tables."""
        folder = Path(folder)
        params, tables = _split(self.to_dict())
        for name, columns in tables.items():
            pq.write_table(pa.table(columns), folder / name)
        text = json.dumps({"format": FORMAT, "version": VERSION, **params}, indent=1,
                          default=_plain)
        (folder / PARAMETERS_FILE).write_text(text, encoding="utf-8")

    def save(self, directory: Path, inputs: dict | None = None) -> Path:
        """Publish the forecast as a folder of its own (written whole, with a manifest)."""
        with publish(Path(directory), "forecast", inputs or self.inputs()) as tmp:
            self.write(tmp)
        return Path(directory)

    def inputs(self) -> dict:
        """What the forecast came from, for its folder's manifest."""
        keys = ("forecast_run", "data_fingerprint", "model_versions")
        return {"year": self.year, **{k: self.provenance.get(k) for k in keys}}

    @staticmethod
    def load(directory: Path) -> Forecast:
        """The forecast of a folder written by `ciplan forecast` (or `save`), after its
        manifest is verified. One-line InputError for a missing, incomplete, changed,
        foreign or old-format folder; an old pickle (forecast.joblib) is never opened."""
        directory = Path(directory)
        if (directory / LEGACY_FILE).exists() and not (directory / PARAMETERS_FILE).exists():
            raise InputError(f"{directory}: a forecast in the old pickle format ({LEGACY_FILE}"
                             "), which ciplan no longer opens because opening a pickle can run "
                             "code; make it again with `ciplan forecast`")
        manifest = read_manifest(directory, "forecast")
        fc = _read(directory)
        # what a plan made from it records: the content it was made from
        return replace(fc, provenance={**fc.provenance,
                                       "forecast_hash": manifest["content_hash"]})

    @staticmethod
    def load_provenance(directory: Path) -> dict:
        """`Forecast.load(directory).provenance` (the manifest verified the same way)
        without reading the forecast itself: what a plan made from the folder records,
        for a re-run that finds every plan made already."""
        directory = Path(directory)
        manifest = read_manifest(directory, "forecast")
        path = directory / PARAMETERS_FILE
        try:
            params = _parameters(path)
            _check_provenance(params["provenance"])
        except (ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
            raise _not_a_forecast(path, exc) from None
        return {**params["provenance"], "forecast_hash": manifest["content_hash"]}


def _read(directory: Path) -> Forecast:
    """Forecast.from_dict of a folder's JSON and Parquet, any fault a one-line InputError."""
    path = directory / PARAMETERS_FILE
    try:
        params = _parameters(path)
        tables = {f.name: pq.read_table(f).to_pydict() for f in directory.glob("*.parquet")
                  if f.name in (COHORTS_FILE, COSTS_FILE, *MATRIX_FILES.values())}
        return Forecast.from_dict(_join(params, tables))
    except (ValueError, KeyError, TypeError, IndexError, OSError, RecursionError,
            pa.ArrowException) as exc:  # RecursionError: JSON nested beyond Python's depth
        raise _not_a_forecast(path, exc) from None


def _parameters(path: Path) -> dict:
    """A forecast folder's JSON table, of this ciplan's format and version."""
    params = json.loads(path.read_bytes())
    if not isinstance(params, dict) or params.get("format") != FORMAT:
        raise ValueError(f"expected a JSON table with format {FORMAT!r}")
    if params.get("version") != VERSION:
        raise InputError(f"{path}: forecast format version {params.get('version')!r}; "
                         f"this ciplan reads version {VERSION}")
    return params


def _not_a_forecast(path: Path, exc: Exception) -> InputError:
    """The one line a damaged or foreign forecast folder gets: the file and what failed."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return InputError(f"{path}: not a ciplan forecast ({type(exc).__name__}: {reason})")


def _split(data: dict) -> tuple[dict, dict[str, dict]]:
    """to_dict() -> (the JSON part, Parquet tables by file name): the cohorts' columns, all
    cohorts' past costs in one long table, and the matrices by column."""
    params = {**data, "cohorts": {k: v for k, v in data["cohorts"].items() if k != "columns"}}
    tables = {COHORTS_FILE: data["cohorts"]["columns"]}
    sevs = data["severities"]
    tables[COSTS_FILE] = {
        "cohort": pa.array(np.repeat(np.arange(len(sevs)), [len(d["costs"]) for d in sevs]),
                           pa.int32()),
        "cost": pa.array(np.concatenate([np.asarray(d["costs"], "float64") for d in sevs]
                                        or [np.empty(0)]))}
    params["severities"] = [{k: v for k, v in d.items() if k != "costs"} for d in sevs]
    for name, file in MATRIX_FILES.items():
        if data[name] is not None:
            columns = np.asarray(data[name], dtype="float64").T
            tables[file] = {f"c{j}": col for j, col in enumerate(columns)}
            params[name] = file
    return params, tables


def _join(params: dict, tables: dict[str, dict]) -> dict:
    """The inverse of `_split`: the JSON part and the Parquet tables -> to_dict() data."""
    data = {**params, "cohorts": {**params["cohorts"], "columns": tables[COHORTS_FILE]}}
    costs = tables[COSTS_FILE]
    cohort, cost = np.asarray(costs["cohort"], "int64"), np.asarray(costs["cost"], "float64")
    sevs = params["severities"]
    if not isinstance(sevs, list) or (cohort.size and not 0 <= cohort.min() <= cohort.max()
                                      < len(sevs)):
        raise ValueError("severity costs name cohorts the forecast does not have")
    order = np.argsort(cohort, kind="stable")
    bounds = np.searchsorted(cohort[order], np.arange(len(sevs) + 1))
    data["severities"] = [{**d, "costs": cost[order[bounds[i]:bounds[i + 1]]]}
                          for i, d in enumerate(sevs)]
    for name, file in MATRIX_FILES.items():
        if params.get(name) is not None:
            table = tables[file]
            data[name] = np.column_stack([table[f"c{j}"] for j in range(len(table))])
    return data


def _calendar_year(value) -> int:
    """The forecast's year as JSON holds it: a whole number in YEARS (not text, not
    true/false, not 2022.5)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            YEARS[0] <= value <= YEARS[1]):
        raise ValueError(f"year = {value!r}; expected a calendar year from {YEARS[0]} to "
                         f"{YEARS[1]}")
    return value


def _check_cohort_numbers(cohorts: pd.DataFrame) -> None:
    """Head counts, rates and mean costs of the cohorts: numbers, finite, from 0 to their
    COHORT_NUMBERS bound (insured, exposure and claimants must be there)."""
    for name, high in COHORT_NUMBERS.items():
        if name not in cohorts and name not in ("insured", "exposure", "claimants"):
            continue
        column = cohorts[name]
        values = (column.to_numpy(dtype="float64") if pd.api.types.is_numeric_dtype(column)
                  and not pd.api.types.is_bool_dtype(column) else None)
        if values is None or not (np.isfinite(values).all() and (values >= 0).all()
                                   and (values <= high).all()):
            raise ValueError(f"cohort column {name!r} must hold numbers from 0 to {high:g}")


def _check_cohort_keys(cohorts: pd.DataFrame, spec: CohortSpec) -> None:
    """Age bands are whole numbers of years from 0 to the spec's last band; the special
    group, where there is one, is true or false."""
    bands = cohorts["age_band"]
    if not (pd.api.types.is_integer_dtype(bands) and bands.between(0, spec.age_max).all()):
        raise ValueError(f"cohort column 'age_band' must hold whole years from 0 to "
                         f"{spec.age_max}")
    if "special_group" in cohorts and not pd.api.types.is_bool_dtype(cohorts["special_group"]):
        raise ValueError("cohort column 'special_group' must hold true or false")


def _check_covariance(design: np.ndarray, cov: np.ndarray) -> None:
    """The GLM's covariance is symmetric and positive semi-definite, and each cohort's
    log-rate variance under it is at most MAX_SPREAD squared (its draws must not overflow)."""
    eigen = np.linalg.eigvalsh((cov + cov.T) / 2)
    tolerance = 1e-9 * max(float(np.abs(eigen).max(initial=0.0)), 1e-300)
    var = np.einsum("ij,jk,ik->i", design, cov, design)
    if not (np.abs(cov - cov.T).max(initial=0.0) <= tolerance
            and eigen.min(initial=0.0) >= -tolerance
            and np.isfinite(var).all() and var.max(initial=0.0) <= MAX_SPREAD**2):
        raise ValueError("frequency covariance must be symmetric, positive semi-definite and "
                         f"give each cohort a log-rate variance up to {MAX_SPREAD**2:g}")


def _check_means(severities) -> None:
    """Every cohort's severity has a finite mean cost up to MAX_COST_LIMIT: a tail without
    a mean (index <= 1) or parameters that overflow price nothing."""
    for i, sev in enumerate(severities):
        try:
            with np.errstate(all="ignore"):
                mean = float(sev.mean())
        except ArithmeticError:
            mean = np.inf
        if not 0 <= mean <= MAX_COST_LIMIT:
            raise ValueError(f"severity of cohort {i} has mean cost {mean:g}; expected a "
                             f"finite mean from 0 to {MAX_COST_LIMIT:g}")


def _check_provenance(provenance) -> None:
    """The provenance is a table, and the plan in force it records (if any) one too."""
    if not isinstance(provenance, dict):
        raise TypeError("provenance must be a table")
    if provenance.get("plan_in_force") is not None and not isinstance(
            provenance["plan_in_force"], dict):
        raise TypeError("provenance plan_in_force must be a table")


def _matrix(value) -> np.ndarray | None:
    """A finite 2-D float matrix, or None."""
    if value is None:
        return None
    out = np.asarray(value, dtype="float64")
    if out.ndim != 2 or not np.isfinite(out).all():
        raise ValueError("frequency matrices must be finite 2-D tables")
    return out


def _frame_to_dict(frame: pd.DataFrame) -> dict:
    """A frame as plain data: columns as lists, the categories of categorical columns."""
    categories = {c: [str(v) for v in frame[c].cat.categories]
                  for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    columns = {c: (frame[c].astype(str) if c in categories else frame[c]).tolist()
               for c in frame.columns}
    return {"columns": columns, "categories": categories}


def _frame_from_dict(data: dict) -> pd.DataFrame:
    """The inverse of `_frame_to_dict`; every column as long as the others."""
    columns = data["columns"]
    if not isinstance(columns, dict) or len({len(v) for v in columns.values()}) > 1:
        raise ValueError("cohort columns must be lists of one length")
    frame = pd.DataFrame({c: list(v) for c, v in columns.items()})
    for c, cats in data.get("categories", {}).items():
        frame[c] = pd.Categorical(frame[c], categories=[str(v) for v in cats])
        if frame[c].isna().any():
            raise ValueError(f"cohort column {c!r} holds a value outside its categories")
    return frame


def _plain(value):
    """JSON for numpy scalars in provenance; anything else is a bug."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not plain data")


def _solve_level(cdf, q: float, means: pd.Series) -> float:
    """The cost level x with cdf(x) = q, by bisection on log x between bounds found from
    the mean severities (in the data's own units)."""
    lo, hi = float(means.min()) / 1e3, float(means.max()) * 1e3
    while cdf(hi) < q and hi < 1e300:
        hi *= 10
    for _ in range(80):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return float(np.sqrt(lo * hi))


def layer_above(lev, survival, a: float, b: float, threshold: float):
    """Expected cost inside [a, b) per claimant above the threshold T,
    E[min(X,b) - min(X,a) | X > T], from the limited expected values `lev` and
    survival = P(X > T): with g(x) = E[min(X,x) 1{X>T}] = lev(max(x,T)) - lev(T) +
    min(x,T) S(T), it is (g(b) - g(a)) / S(T); NaN where S(T) = 0. A float, or an array
    when `lev` and `survival` are those of several distributions at once."""
    survival = np.asarray(survival, dtype="float64")
    lev_t = np.asarray(lev(threshold), dtype="float64")

    def g(x: float) -> np.ndarray:
        return np.asarray(lev(max(x, threshold)), dtype="float64") - lev_t + min(
            x, threshold) * survival

    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(survival > 0, (g(b) - g(a)) / np.where(survival > 0, survival, 1.0),
                       np.nan)
    return float(out) if out.ndim == 0 else out


def reported_layer(sev: BlendedSeverity, a: float, b: float, threshold: float) -> float:
    """Expected cost inside [a, b) per reported claimant (cost above `threshold`) of a
    blended severity (its empirical and parametric parts mixed by credibility)."""
    param = 1 - float(sev.parametric.cdf(threshold))
    survival = param if sev.credibility == 0 or sev.costs.size == 0 else (
        sev.credibility * float(np.mean(sev.costs > threshold))
        + (1 - sev.credibility) * param)
    return layer_above(sev.lev, survival, a, b, threshold)


def _mean_one(log_effect: np.ndarray, variance: float | np.ndarray) -> np.ndarray:
    """Multipliers exp(Z - variance / 2) of normal log effects Z (mean 0, that variance):
    their mean is 1 (E[exp(Z)] = exp(variance / 2)), so a systemic effect moves a year
    around the model's expected value, not above it (the exact prices assume so)."""
    return np.exp(log_effect - np.asarray(variance, dtype="float64") / 2)


def _draw_cohort(rng, sev: BlendedSeverity, lam: np.ndarray, mult: np.ndarray,
                 floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Costs above `floor` of one cohort in every scenario (cost level x mult[s])."""
    thr = floor / mult                       # floor in the cohort's unscaled costs
    z = sev.credibility if sev.costs.size else 0.0
    par = sev.parametric
    f_thr = par.cdf(thr)
    n_par = rng.poisson(lam * (1 - z) * (1 - f_thr))
    s_par = np.repeat(np.arange(len(lam), dtype=np.int32), n_par)  # 4 bytes a cost
    # u = F(thr) + r (1 - F(thr)), uniform above the floor, worked in place (one array of
    # millions instead of five)
    u = rng.random(s_par.size)
    u *= (1 - f_thr)[s_par]
    u += f_thr[s_par]
    np.minimum(u, 1 - 1e-15, out=u)
    x_par = par.ppf(u)
    x_par *= mult[s_par]
    if z == 0:
        return x_par, s_par
    emp = np.sort(sev.costs)
    start = np.searchsorted(emp, thr, side="right")
    n_emp = rng.poisson(lam * z * (emp.size - start) / emp.size)
    s_emp = np.repeat(np.arange(len(lam), dtype=np.int32), n_emp)
    idx = start[s_emp] + (rng.random(s_emp.size) * (emp.size - start[s_emp])).astype(int)
    x_emp = emp[np.minimum(idx, emp.size - 1)] * mult[s_emp]
    return np.concatenate([x_par, x_emp]), np.concatenate([s_par, s_emp])
