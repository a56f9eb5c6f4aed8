"""The candidate models of a training and what a train run is reused by (its config and
the data settings it records). Apart from train.py, which imports the models themselves
(scikit-learn, SciPy, matplotlib): a re-run that only looks for a finished train run needs
these, not the models."""

from __future__ import annotations

from forecasting.config import Development, Models, ProjectConfig
from forecasting.data.cohorts import CohortSpec
from forecasting.data.options import DataOptions
from pipelines.conventions import MODEL_FORMAT

BASELINE = "poisson-bands"  # the one-hot band GLM: always a candidate, never beaten by worse
# tag of a train run: the data settings beyond the fingerprint it was trained with
DATA_CHECKS_TAG = "data_checks"


def frequency_candidates(spec: CohortSpec, models: Models) -> dict[str, dict]:
    """Frequency candidates: the one-hot band GLM (the data's bands: the baseline), the
    same with age x key interactions and band widths by cross-validation, the spline GLM
    (knots by cross-validation) with and without interactions, and the GBM."""
    keys = tuple(k for k in models.interactions if k in spec.keys)
    tag = "-x-" + "-".join(keys) if keys else ""
    out = {BASELINE: {"frequency": "glm", "frequency_params": {
        "age": "bands", "age_band_width": spec.band_width}}}
    if keys:
        out[f"poisson-bands{tag}"] = {"frequency": "glm", "frequency_params": {
            "age": "bands", "interactions": keys}}
    out["poisson-spline"] = {"frequency": "glm", "frequency_params": {"age": "spline"}}
    if keys:
        out[f"poisson-spline{tag}"] = {"frequency": "glm", "frequency_params": {
            "age": "spline", "interactions": keys}}
    out["poisson-gbm"] = {"frequency": "gbm"}
    return out


def severity_candidates(models: Models) -> dict[str, dict]:
    """Severity candidates: the splice point by profile likelihood (or the configured
    quantile) and, for comparison, fixed at the 95th percentile."""
    chosen = ("spliced-profile", {"tail_quantile": None}) if models.splice_quantile is None \
        else (f"spliced-q{models.splice_quantile:g}", {"tail_quantile": models.splice_quantile})
    return dict([chosen, ("spliced-q0.95", {"tail_quantile": 0.95})])


def train_config_of(spec: CohortSpec, reported_above: float, rule: str,
                    models: Models, development: Development | None = None) -> dict:
    """What a training depends on besides the data: equal configs may reuse a run. The
    model format is part of it: runs whose models cannot be loaded now are not reused.
    From the cells' spec, threshold and rule (`train.train_config`) or, before the cells
    are built, from the options that make them (a re-run's `DataKey`). `development`: the
    [development] settings, given for data read as of a date (they complete the cells
    the models are fitted on; without an as-of date they change nothing)."""
    out = {"candidates": sorted(frequency_candidates(spec, models))
           + sorted(severity_candidates(models)),
           "spec": str(spec), "reported_above": reported_above,
           "rule": rule, "models": models.model_dump(mode="json"),
           "model_format": MODEL_FORMAT}
    if development is not None:
        out["development"] = development.model_dump(mode="json")
    return out


def development_of(options: DataOptions, config: ProjectConfig) -> Development | None:
    """The [development] settings when the data are read as of a date (they complete the
    cells); None otherwise."""
    return None if options.as_of is None else config.development


def data_checks(options: DataOptions, config: ProjectConfig) -> str:
    """The settings that decide whether the data pass and what their cells are, beyond
    the fingerprint and the train config: the largest believable cost, the text encoding
    and, for data read as of a date, the claims development (otherwise it is not applied:
    naming it would have every later re-run read the data again for nothing). A train run
    records them (tag `data_checks`); a re-run that finds the run on the same fingerprint,
    config and these settings knows the data passed, so it need not read them all again
    unless something must be computed."""
    development = development_of(options, config)
    return (f"max_cost={options.max_cost!r}|encoding={options.codec}|development="
            + ("none" if development is None
               else repr(sorted(development.model_dump(mode="json").items()))))
