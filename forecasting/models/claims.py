"""ClaimsModel: frequency + severity + enrollment fitted on cells, forecasting year T+1."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from forecasting.data.cells import Cells
from forecasting.forecast import Forecast
from forecasting.models.completion import completion_sd
from forecasting.models.enrollment import insured_sd, project_enrollment
from forecasting.models.features import distinct_rows
from forecasting.models.frequency import GBMFrequency, PoissonFrequencyGLM
from forecasting.models.severity import BlendedSeverity, SplicedSeverityModel, lev_matrix
from forecasting.models.threads import single_threaded
from forecasting.models.uncertainty import (
    MIN_YEAR_SD,
    prediction_factor,
    year_level_variance,
    year_sd,
)

FREQUENCY_MODELS = {"glm": PoissonFrequencyGLM, "gbm": GBMFrequency}
FREQUENCY_ROWS = ("cells", "ages")


def counts_like(freq, cells: Cells):
    """A frequency estimator's twin for claim counts (same class and settings, fitted on
    the cells' claims per member-year), or None when the data count no claims. What a
    registered claimant-frequency champion needs to forecast claims too."""
    rows = cells.table if getattr(freq, "band_width", None) != 1 or cells.by_age is None \
        else cells.by_age.assign(age=cells.by_age["age_band"])
    if "claims" not in rows or rows["claims"].sum() == 0:
        return None
    return clone(freq).fit(rows, rows["claims"] / rows["exposure"],
                           sample_weight=rows["exposure"])


def _rows_by_key(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, np.ndarray]:
    """The positions of `frame`'s rows (in order) for each combination of `keys`: one sort
    of the group numbers, not one array per group built by pandas (a few thousand cohorts
    of 400 k claimants, asked for every forecast of a backtest)."""
    codes = distinct_rows(frame, tuple(keys))[0]
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max(initial=-1) + 2))
    firsts = frame[keys].iloc[order[bounds[:-1]]].itertuples(index=False)
    return {tuple(key): order[lo:hi] for key, lo, hi in zip(firsts, bounds[:-1], bounds[1:],
                                                            strict=True)}


def _severity_year_sd(cells: Cells, sev: SplicedSeverityModel) -> float:
    """How far each past year's cost level sat from the severity model (log sd): the
    systemic effect the scenarios draw as a multiplier of every cost.

    The cohorts differ by scale only, so a year whose costs all sit c times the model's
    shifts the mean of log(cost / scale) by log c, whatever the distribution's shape
    (without a reporting threshold: above one, the claimants seen move less than c, and
    this reads a year effect smaller). Each year's mean of that residual is its level;
    their spread about a line in the year is `year_level_variance`. Comparing each
    year's total cost with the model's mean instead counts a heavy tail's sampling as a
    year effect: a Pareto index near 1 puts a year's total far below its mean in most
    years (a log sd of 3, whose mean-one multiplier sits near 0 in most scenarios)."""
    c = cells.claimants
    cost = c["cost"].to_numpy(dtype="float64")
    keep = cost > 0
    if keep.sum() < 2:
        return MIN_YEAR_SD
    resid = np.log(cost[keep]) - sev.log_scale(c if keep.all() else c.loc[keep])
    systemic = year_level_variance(c["year"].to_numpy()[keep], resid)
    return float(max(np.sqrt(max(systemic, 0.0)), MIN_YEAR_SD))


def _reuse(shared: dict | None, key: tuple, make):
    """make(), or the fit `shared` already holds under `key` (kept there when new)."""
    if shared is None:
        return make()
    if key not in shared:
        shared[key] = make()
    return shared[key]


@dataclass
class ClaimsModel:
    """Fit on the cells of past years; `forecast(year)` gives the Forecast of a later year.

    frequency: "glm" (Poisson GLM, parameter covariance used in scenarios) or "gbm".
    frequency_rows: "cells" (the cohort cells) or "ages" (cells at single years of age,
    which hold everything the member rows hold: the fit on member rows).
    credibility_k: claimants at which a cohort's own past costs get half the weight.
    frequency_params, severity_params: passed to the estimators (keys, band width and
    base year come from the cells).
    claim_counts: also model claims (not claimants) per member-year when the data count
    them; off where only claimants are scored (backtests and candidate selection), which
    halves the frequency fits.
    """

    frequency: str = "glm"
    credibility_k: float = 200.0
    frequency_params: dict = field(default_factory=dict)
    severity_params: dict = field(default_factory=dict)
    frequency_rows: str = "cells"
    claim_counts: bool = True

    def _frequency_estimator(self, cells: Cells, rows: pd.DataFrame, target: str):
        if self.frequency not in FREQUENCY_MODELS:
            raise ValueError(f"frequency must be one of {sorted(FREQUENCY_MODELS)}")
        width = 1 if self.frequency_rows == "ages" else cells.spec.band_width
        est = FREQUENCY_MODELS[self.frequency](
            base_year=int(cells.table["year"].min()), keys=cells.spec.keys, band_width=width,
            **self.frequency_params)
        return est.fit(rows, rows[target] / rows["exposure"], sample_weight=rows["exposure"])

    def _frequency_rows(self, cells: Cells) -> pd.DataFrame:
        if self.frequency_rows not in FREQUENCY_ROWS:
            raise ValueError(f"frequency_rows must be one of {', '.join(FREQUENCY_ROWS)}")
        if self.frequency_rows == "cells":
            return cells.table
        if cells.by_age is None:
            raise ValueError("frequency_rows='ages' needs cells made by load_data (by_age)")
        return cells.by_age.assign(age=cells.by_age["age_band"])

    @single_threaded
    def fit(self, cells: Cells, shared: dict | None = None) -> ClaimsModel:
        """Fit the three on `cells`. `shared`: a dict in which fits are kept and reused by
        other ClaimsModels on the same cells with the same settings (candidates that
        differ only in frequency share their severity fit, and vice versa)."""
        rows = self._frequency_rows(cells)
        key = (tuple(cells.years), len(cells.claimants), str(cells.as_of), self.frequency,
               self.frequency_rows,
               repr(sorted(self.frequency_params.items())))
        freq = _reuse(shared, ("claimants", *key),
                      lambda: self._frequency_estimator(cells, rows, "claimants"))
        counts = (_reuse(shared, ("claims", *key),
                         lambda: self._frequency_estimator(cells, rows, "claims"))
                  if self.claim_counts and "claims" in rows and rows["claims"].sum() > 0
                  else None)
        sev_key = (*key[:3], repr(sorted(self.severity_params.items())))
        sev = _reuse(shared, ("severity", *sev_key), lambda: self._severity(cells))
        sev_sd = _reuse(shared, ("severity year sd", *sev_key),
                        lambda: _severity_year_sd(cells, sev))
        return self.use(cells, freq, sev, counts, sev_sd)

    def _severity(self, cells: Cells) -> SplicedSeverityModel:
        c = cells.claimants
        sev = SplicedSeverityModel(reported_above=cells.reported_above,
                                   base_year=int(cells.table["year"].min()),
                                   keys=cells.spec.keys, band_width=cells.spec.band_width,
                                   **self.severity_params)
        return sev.fit(c, c["cost"].to_numpy())

    def use(self, cells: Cells, freq, sev: SplicedSeverityModel, counts=None,
            sev_year_sd: float | None = None) -> ClaimsModel:
        """Adopt fitted frequency and severity estimators (e.g. champions from the registry)
        with the cells of the years before the forecast year; `counts` optionally models
        claims (not claimants) per member-year; `sev_year_sd`: the severity's year effect
        on these cells when already known (candidates sharing a severity fit)."""
        self.cells_, self.freq_, self.sev_, self.counts_ = cells, freq, sev, counts
        t = cells.table
        # year effects: how far each past year sat from the model, for the scenarios
        expected = t.assign(e=self.predict_frequency(t) * t["exposure"]).groupby("year")[
            "e"].sum()
        self.freq_year_sd_ = year_sd(t.groupby("year")["claimants"].sum(), expected, 2)
        self.sev_year_sd_ = (_severity_year_sd(cells, sev) if sev_year_sd is None
                             else sev_year_sd)
        return self

    def predict_frequency(self, cohorts: pd.DataFrame, model=None) -> np.ndarray:
        """Expected count per member-year of each cohort row. A model fitted on single ages
        is averaged over the single ages inside each band, weighted by the exposure of the
        last year (aged one year); a band without such exposure takes its middle age."""
        model = model or self.freq_
        if getattr(model, "band_width", None) != 1:
            return model.predict(cohorts)
        middle = cohorts["age_band"] + (self.cells_.spec.band_width - 1) / 2
        mid = model.predict(cohorts.assign(age=middle))
        fine = self._single_ages(cohorts)
        if fine is None:
            return mid
        fine["rate"] = model.predict(fine)
        keys = self.cells_.spec.columns
        avg = fine.assign(r=fine["rate"] * fine["exposure"]).groupby(keys, observed=True)[
            ["r", "exposure"]].sum()
        avg = (avg["r"] / avg["exposure"]).rename("rate").reset_index()
        found = cohorts[keys].merge(avg, on=keys, how="left")["rate"].to_numpy()
        return np.where(np.isnan(found), mid, found)

    def _single_ages(self, cohorts: pd.DataFrame) -> pd.DataFrame | None:
        """The last year's cells at single ages, aged one year, in the cohorts' year(s)."""
        fine = self.cells_.by_age
        if fine is None:
            return None
        spec = self.cells_.spec
        last = fine[fine["year"] == fine["year"].max()]
        age = np.minimum(last["age_band"].to_numpy() + 1, spec.fine().age_max)
        out = pd.concat([last.assign(year=y, age=age, age_band=spec.band(age))
                         for y in cohorts["year"].unique()], ignore_index=True)
        return out[["year", "age", "age_band", *spec.keys, "exposure"]]

    @single_threaded
    def forecast(self, year: int, provenance: dict | None = None) -> Forecast:
        """The Forecast of `year` (after the fitted years)."""
        cells = self.cells_
        cohorts = cells.kept(("enrollment", year), lambda: project_enrollment(
            cells.table, cells.spec, year)).copy()  # the columns below are added to it
        freq = self.predict_frequency(cohorts)
        # under left truncation the models see claimants above the threshold; the full
        # count follows from the fitted severity: N_all = N_above / P(X > threshold)
        dists = self.sev_.distributions(cohorts)
        share = np.ones(len(cohorts))
        if cells.reported_above > 0:
            share = np.array([1 - float(d.cdf(cells.reported_above)) for d in dists])
        cohorts["frequency"] = freq / share
        cohorts["claimants"] = cohorts["frequency"] * cohorts["exposure"]
        cohorts["reported_share"] = share
        if self.counts_ is not None:
            cohorts["claims"] = self.predict_frequency(cohorts, self.counts_) * cohorts[
                "exposure"]
        severities = tuple(self._blend(cohorts, dists))
        cohorts["mean_severity"] = np.diff(lev_matrix(severities, [0.0, np.inf]), axis=1)[:, 0]
        design = cov = None
        if isinstance(self.freq_, PoissonFrequencyGLM):
            design, cov = self.freq_.design_rows(self._design_frame(cohorts)), \
                self.freq_.covariance_
        widen = prediction_factor(cells.table["year"].to_numpy(), year)
        return Forecast(year, cells.spec, cohorts, severities, design, cov,
                        self.freq_year_sd_ * widen,
                        float(np.hypot(self.sev_year_sd_ * widen, completion_sd(cells, year))),
                        dict(provenance or {}), insured_sd(cells.table, year),
                        cells.reported_above)

    def _design_frame(self, cohorts: pd.DataFrame) -> pd.DataFrame:
        """Rows whose design stands for each cohort in coefficient draws: the cohort's mean
        single age when the model was fitted on single ages."""
        if getattr(self.freq_, "band_width", None) != 1:
            return cohorts
        fine = self._single_ages(cohorts)
        keys = self.cells_.spec.columns
        mean_age = fine.assign(a=fine["age"] * fine["exposure"]).groupby(
            keys, observed=True)[["a", "exposure"]].sum()
        mean_age = (mean_age["a"] / mean_age["exposure"]).rename("age").reset_index()
        out = cohorts.merge(mean_age, on=keys, how="left")
        middle = out["age_band"] + (self.cells_.spec.band_width - 1) / 2
        return out.assign(age=out["age"].fillna(middle))

    def _blend(self, cohorts: pd.DataFrame, dists) -> list[BlendedSeverity]:
        """Each cohort's past costs, trended to the forecast year, blended by credibility."""
        c = self.cells_.claimants
        keys = self.cells_.spec.columns
        trend = self.sev_.coef_[-1]
        year = int(cohorts["year"].iloc[0])
        trended = c["cost"].to_numpy() * np.exp(trend * (year - c["year"].to_numpy()))
        index = self.cells_.kept(("claimant rows", *keys), lambda: _rows_by_key(c, keys))
        out = []
        for row, dist in zip(cohorts[keys].itertuples(index=False), dists, strict=True):
            costs = trended[index.get(tuple(row), np.array([], dtype=int))]
            z = 0.0 if self.cells_.reported_above > 0 else costs.size / (
                costs.size + self.credibility_k)
            out.append(BlendedSeverity(dist, costs, z))
        return out
