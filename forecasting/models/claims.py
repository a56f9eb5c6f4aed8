"""ClaimsModel: frequency + severity + enrollment fitted on cells, forecasting year T+1."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.data.cells import Cells
from forecasting.forecast import Forecast
from forecasting.models.enrollment import project_enrollment
from forecasting.models.frequency import GBMFrequency, PoissonFrequencyGLM
from forecasting.models.severity import BlendedSeverity, SplicedSeverityModel

FREQUENCY_MODELS = {"glm": PoissonFrequencyGLM, "gbm": GBMFrequency}


def _year_sd(actual: pd.Series, expected: pd.Series, n_params: int) -> float:
    """Spread of log(actual / expected) by year: the systemic year-to-year effect."""
    log_ae = np.log(actual / expected)
    dof = max(len(log_ae) - n_params, 1)
    return float(max(np.sqrt((log_ae**2).sum() / dof), 0.01))


@dataclass
class ClaimsModel:
    """Fit on the cells of past years; `forecast(year)` gives the Forecast of a later year.

    frequency: "glm" (Poisson GLM, parameter covariance used in scenarios) or "gbm".
    credibility_k: claimants at which a cohort's own past costs get half the weight.
    """

    frequency: str = "glm"
    credibility_k: float = 200.0
    frequency_params: dict = field(default_factory=dict)
    severity_params: dict = field(default_factory=dict)

    def fit(self, cells: Cells) -> ClaimsModel:
        if self.frequency not in FREQUENCY_MODELS:
            raise ValueError(f"frequency must be one of {sorted(FREQUENCY_MODELS)}")
        t, c = cells.table, cells.claimants
        base_year = int(t["year"].min())
        freq = FREQUENCY_MODELS[self.frequency](base_year=base_year, **self.frequency_params)
        freq.fit(t, t["claimants"] / t["exposure"], sample_weight=t["exposure"])
        sev = SplicedSeverityModel(reported_above=cells.reported_above, base_year=base_year,
                                   **self.severity_params)
        sev.fit(c, c["cost"].to_numpy())
        return self.use(cells, freq, sev)

    def use(self, cells: Cells, freq, sev: SplicedSeverityModel) -> ClaimsModel:
        """Adopt fitted frequency and severity estimators (e.g. champions from the registry)
        with the cells of the years before the forecast year."""
        self.cells_, self.freq_, self.sev_ = cells, freq, sev
        t, c = cells.table, cells.claimants
        # year effects: how far each past year sat from the model, for the scenarios
        expected = t.assign(e=self.freq_.predict(t) * t["exposure"]).groupby("year")["e"].sum()
        self.freq_year_sd_ = _year_sd(t.groupby("year")["claimants"].sum(), expected, 2)
        mean = c.assign(m=self.sev_.predict(c)).groupby("year")["m"].sum()
        self.sev_year_sd_ = _year_sd(c.groupby("year")["cost"].sum(), mean, 2)
        return self

    def forecast(self, year: int, provenance: dict | None = None) -> Forecast:
        """The Forecast of `year` (after the fitted years)."""
        cells = self.cells_
        cohorts = project_enrollment(cells.table, cells.spec, year)
        freq = self.freq_.predict(cohorts)
        # under left truncation the models see claimants above the threshold; the full
        # count follows from the fitted severity: N_all = N_above / P(X > threshold)
        dists = self.sev_.distributions(cohorts)
        if cells.reported_above > 0:
            freq = freq / np.array([1 - float(d.cdf(cells.reported_above)) for d in dists])
        cohorts["frequency"] = freq
        cohorts["claimants"] = freq * cohorts["exposure"]
        severities = tuple(self._blend(cohorts, dists))
        cohorts["mean_severity"] = [s.mean() for s in severities]
        design = cov = None
        if isinstance(self.freq_, PoissonFrequencyGLM):
            z = self.freq_.design_.transform(cohorts)
            design = np.hstack([np.ones((len(z), 1)), z])
            cov = self.freq_.covariance_
        return Forecast(year, cells.spec, cohorts, severities, design, cov,
                        self.freq_year_sd_, self.sev_year_sd_, dict(provenance or {}))

    def _blend(self, cohorts: pd.DataFrame, dists) -> list[BlendedSeverity]:
        """Each cohort's past costs, trended to the forecast year, blended by credibility."""
        c = self.cells_.claimants
        keys = self.cells_.spec.columns
        trend = self.sev_.coef_[-1]
        year = int(cohorts["year"].iloc[0])
        trended = c["cost"].to_numpy() * np.exp(trend * (year - c["year"].to_numpy()))
        groups = pd.Series(np.arange(len(c))).groupby([c[k].to_numpy() for k in keys])
        index = {key: rows.to_numpy() for key, rows in groups}
        out = []
        for row, dist in zip(cohorts[keys].itertuples(index=False), dists, strict=True):
            costs = trended[index.get(tuple(row), np.array([], dtype=int))]
            z = 0.0 if self.cells_.reported_above > 0 else costs.size / (
                costs.size + self.credibility_k)
            out.append(BlendedSeverity(dist, costs, z))
        return out
