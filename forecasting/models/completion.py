"""Completing an as-of view: each service year (and cohort group) completed by claims
development, the cells scaled to it, and what that leaves for the forecast and backtests.

Each year's claimants are scaled by its claimant factor and its cost by the cost factor;
each claimant's annual cost goes through the increasing map that reproduces the developed
layer totals (`layer_map`). Bornhuetter-Ferguson's prior for the latest year is ciplan's
own forecast of it; the latest year's uncertainty widens the forecast's scenarios; the
backtests see each origin's data as of its negotiation date (`as_known`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from forecasting.config import Development
from forecasting.data.cells import Cells, completion_factors
from forecasting.data.dataset import Dataset, load_data
from forecasting.errors import InputError
from forecasting.forecast import plan_levels
from forecasting.models.development import (
    complete_column,
    layer_names,
    lognormal_interval,
    trend_leverage,
    triangles,
    with_layers,
)
from forecasting.models.layer_map import layer_edges, layered_map
from forecasting.scheme.in_force import Scheme


@dataclass(frozen=True)
class YearCompletion:
    """One service year (of one group, or all) completed: reported (settled by the as-of
    date) and completed eligible cost (money units of the data) with its standard error,
    the claimants likewise."""

    year: int
    reported: float
    completed: float
    se: float
    claimants_reported: float
    claimants_completed: float
    group: str = ""
    pooled: bool = False  # completed by the portfolio's factors
    layers_reported: tuple[float, ...] = ()  # cost inside each layer (Completion.edges)
    layers: tuple[float, ...] = ()  # the same completed, adding up to `completed`

    @property
    def factor(self) -> float:
        return self.completed / self.reported if self.reported > 0 else 1.0

    @property
    def claimant_factor(self) -> float:
        return (self.claimants_completed / self.claimants_reported
                if self.claimants_reported > 0 else 1.0)

    def scaled_like(self, whole: YearCompletion, group: str) -> YearCompletion:
        """This group's year completed by the factors of `whole` (a group too thin for a
        triangle of its own), its error in proportion to its share."""
        share = self.reported / whole.reported if whole.reported > 0 else 0.0
        completed = self.reported * whole.factor
        layers = ()
        if whole.layers:
            known, done = np.array(whole.layers_reported), np.array(whole.layers)
            factors = np.divide(done, known, out=np.ones_like(done), where=known > 0)
            known = np.array(self.layers_reported)
            layers = _adding_up(known, known * factors, completed)
        return YearCompletion(self.year, self.reported, completed, whole.se * share,
                              self.claimants_reported,
                              self.claimants_reported * whole.claimant_factor, group, True,
                              self.layers_reported, layers)

    def stated(self, level: float) -> dict:
        """Plain data with the factors and the lognormal interval at `level`."""
        low, high, log_sd = lognormal_interval(self.completed, self.se, level)
        return {**asdict(self), "factor": self.factor, "claimant_factor":
                self.claimant_factor, "low": low, "high": high, "log_sd": log_sd}


def total(parts: list[YearCompletion]) -> YearCompletion:
    """A year's groups added up: the errors of groups developed apart in quadrature, those
    of groups sharing the portfolio's factors added (they move together)."""
    own = sum(p.se**2 for p in parts if not p.pooled)
    pooled = sum(p.se for p in parts if p.pooled)
    return YearCompletion(parts[0].year, sum(p.reported for p in parts),
                          sum(p.completed for p in parts), float(np.sqrt(own + pooled**2)),
                          sum(p.claimants_reported for p in parts),
                          sum(p.claimants_completed for p in parts))


@dataclass(frozen=True)
class Completion:
    """Every year of an as-of view completed by one method: the years' totals, and the
    factors per year and group (`group_by`; the totals' when it is "")."""

    as_of: datetime.date
    method: str
    level: float
    years: tuple[YearCompletion, ...]
    group_by: str = ""
    groups: tuple[YearCompletion, ...] = ()
    edges: tuple[float, ...] = ()  # the cost layers developed apart (none: cost alone)

    def to_dict(self) -> dict:
        """Plain data for provenance, the report and MLflow."""
        return {"as_of": self.as_of.isoformat(), "method": self.method, "level": self.level,
                "group_by": self.group_by, "edges": list(self.edges),
                "years": [y.stated(self.level) for y in self.years],
                "groups": [g.stated(self.level) for g in self.groups]}


_METHOD_NAMES = {"chain-ladder": "chain ladder",
                 "bornhuetter-ferguson": "Bornhuetter-Ferguson"}


def statement(cells: Cells) -> dict | None:
    """The latest year's completion as the report and the forecast state it: as-of date,
    year, reported and completed cost, factor, interval (None for complete data)."""
    if not cells.completion:
        return None
    done = cells.completion
    y = max(done["years"], key=lambda y: y["year"])
    return {"as_of": done["as_of"], "year": y["year"], "reported": y["reported"],
            "completed": y["completed"], "factor": y["factor"], "low": y["low"],
            "high": y["high"], "method": _METHOD_NAMES[done["method"]],
            "level": done["level"]}


def _adding_up(known: np.ndarray, layers: np.ndarray, completed: float
               ) -> tuple[float, ...]:
    """Layers made to add up to the completed cost (their chain ladders, one per layer,
    need not add up to the total's): what each layer still expects to come is scaled, so
    that no layer ends below what is already settled in it (a layer's settled cost cannot
    fall); the whole layers are scaled only when the completed cost is below the settled."""
    known, layers = np.asarray(known, dtype=float), np.asarray(layers, dtype=float)
    if not (np.isfinite(known).all() and np.isfinite(layers).all()):
        return tuple(float(x) for x in layers)  # no layered map: the cost is scaled
    to_come = np.maximum(layers - known, 0.0)
    rest = completed - known.sum()
    if rest >= 0 and to_come.sum() > 0:
        return tuple(float(x) for x in known + to_come * (rest / to_come.sum()))
    if rest >= 0:  # nothing expected to come by layer: in proportion to what is settled
        out = known * (completed / known.sum()) if known.sum() > 0 else known
        return tuple(float(x) for x in out)
    return tuple(float(x) for x in layers * (completed / layers.sum())) if layers.sum() > 0 \
        else tuple(float(x) for x in layers)


@dataclass(frozen=True)
class Setup:
    """How an as-of view is completed: date, the project's [development] options, the
    cost layers developed apart and the prior (cost, claimants) of the latest year per
    group ("" the portfolio) from ciplan's own forecast, for Bornhuetter-Ferguson."""

    as_of: datetime.date
    options: Development = field(default_factory=Development)
    edges: tuple[float, ...] = ()
    priors: dict = field(default_factory=dict)


def _completions(lags: pd.DataFrame, exposure: pd.Series, setup: Setup, group: str = ""
                 ) -> list[YearCompletion]:
    """Each service year of these lags completed: cost and claimants triangles, and one
    triangle per cost layer when there are edges."""
    years = sorted(int(y) for y in lags["year"].unique())
    names = layer_names(setup.edges)
    method, tail = setup.options.method, setup.options.tail
    tri = triangles(with_layers(lags, setup.edges), setup.as_of, ("cost", "claimants", *names))
    weight = exposure.reindex(years).to_numpy(float)
    prior_cost, prior_count = setup.priors.get(group, (None, None))
    cost = complete_column(tri["cost"], method, weight, prior_cost, tail)
    count = complete_column(tri["claimants"], method, weight, prior_count, tail)
    # the layers give the completed cost its shape (their sum is made the total's): by the
    # chain ladder whatever the method, as a prior trended over a thin top layer's wild
    # ultimates can dwarf the whole year
    layers = [complete_column(tri[n], "chain-ladder", tail=tail) for n in names]
    out = []
    for i, year in enumerate(years):
        known = tuple(float(lay[0][i]) for lay in layers)
        # a layer empty when young (the top ones) has no factors of its own: the total's
        factor = cost[1][i] / cost[0][i] if cost[0][i] > 0 else 1.0
        ends = [lay[1][i] if np.isfinite(lay[1][i]) and lay[1][i] >= lay[0][i]
                else lay[0][i] * factor for lay in layers]
        done = _adding_up(known, ends, float(cost[1][i])) if layers else ()
        out.append(YearCompletion(year, float(cost[0][i]), float(cost[1][i]),
                                  float(cost[2][i]), float(count[0][i]), float(count[1][i]),
                                  group, False, known, done))
    return out


def _by_group(cells: Cells, whole: list[YearCompletion], setup: Setup
              ) -> list[YearCompletion]:
    """The years completed group by group (`group_by`); a group with fewer than
    `min_claimants` claimants reported in its latest year, or fewer than two years, takes
    the portfolio's factors."""
    options = setup.options
    key = options.group_by
    if key not in cells.lags:
        raise InputError(f"[development] group_by: {key!r} is not a cohort key (keys: "
                         f"{', '.join(cells.spec.keys) or 'none'})")
    table = cells.table.assign(**{key: cells.table[key].astype(str)})
    exposure = table.groupby(["year", key], observed=True)["exposure"].sum()
    portfolio = {y.year: y for y in whole}
    parts = []
    for value, lags in cells.lags.groupby(key, observed=True, sort=True):
        latest = lags[lags["year"] == lags["year"].max()]["claimants"].sum()
        mine = exposure.xs(value, level=key)
        if lags["year"].nunique() >= 2 and latest >= options.min_claimants:
            parts += _completions(lags, mine, setup, str(value))
            continue
        for year, part in with_layers(lags, setup.edges).groupby("year"):
            known = tuple(float(part[n].sum()) for n in layer_names(setup.edges))
            reported = YearCompletion(int(year), float(part["cost"].sum()), 0.0, 0.0,
                                      float(part["claimants"].sum()), 0.0,
                                      layers_reported=known)
            parts.append(reported.scaled_like(portfolio[int(year)], str(value)))
    return parts


def complete(cells: Cells, options: Development | None = None,
             edges: tuple[float, ...] = (), priors: dict | None = None) -> Completion:
    """Every year of an as-of view completed by `options.method` (default: the chain
    ladder on the portfolio), each cost layer between `edges` on its own triangle too,
    Bornhuetter-Ferguson's latest year from `priors` (see Setup); InputError when the data
    hold no settlement history to build triangles from."""
    options = options or Development()
    if cells.lags is None or cells.as_of is None:
        raise InputError("claims development needs the data as of a date (--as-of) with "
                         "settlement dates")
    years = sorted(int(y) for y in cells.lags["year"].unique())
    if len(years) < 2:
        raise InputError(f"claims development needs at least two service years with "
                         f"settlements by {cells.as_of}; got {years}")
    exposure = cells.table.groupby("year")["exposure"].sum()
    setup = Setup(cells.as_of, options, tuple(edges), priors or {})
    whole = _completions(cells.lags, exposure, setup)
    if not options.group_by:
        return Completion(cells.as_of, options.method, options.level, tuple(whole),
                          edges=tuple(edges))
    parts = _by_group(cells, whole, setup)
    totals = tuple(total([p for p in parts if p.year == y]) for y in years)
    return Completion(cells.as_of, options.method, options.level, totals,
                      options.group_by, tuple(parts), tuple(edges))


def completed_cells(cells: Cells, completion: Completion) -> Cells:
    """Cells with each year (of each group) completed: claimants (and claim counts) scaled
    by the claimant factor, cost by the cost factor, and each claimant's annual cost
    mapped so that the layers add up to their developed totals (`layered_map`); where no
    layers were developed or no map reaches them, scaled to the mean cost of a claimant
    once all is settled (completed cost / completed claimants; the ratio of the factors
    when every settled cost is a claimant's)."""
    key = completion.group_by
    rows = completion.groups if key else completion.years
    stated = completion.to_dict()

    def scaled(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        n = completion_factors(stated, frame, "claimant_factor")
        out = frame.copy()
        for column in ("claimants", "claims"):
            if column in out:
                out[column] = out[column].to_numpy(float) * n
        out["cost"] = out["cost"].to_numpy() * completion_factors(stated, frame, "factor")
        return out

    claimants, layered = _mapped_claimants(cells.claimants, rows, key, completion.edges)
    return replace(cells, table=scaled(cells.table), claimants=claimants,
                   by_age=scaled(cells.by_age), completion=stated | {"layered": layered})


def _mapped_claimants(claimants: pd.DataFrame, rows, key: str, edges: tuple[float, ...]
                      ) -> tuple[pd.DataFrame, list[dict]]:
    """Each (year, group)'s claimants' costs completed by its layered map, or scaled;
    with a note of which."""
    cost = claimants["cost"].to_numpy(dtype=float).copy()
    groups = claimants[key].astype(str).to_numpy() if key else None
    notes = []
    for y in rows:
        mask = claimants["year"].to_numpy() == y.year
        if key:
            mask &= groups == y.group
        mapped = (layered_map(cost[mask], y.claimant_factor, np.array(edges),
                              np.array(y.layers)) if y.layers else None)
        # scaled: to the mean cost of a claimant once all is settled. The rows' own sum
        # is the base, not the year's settled cost: under a reporting threshold that also
        # holds the costs of member-years not yet over it, which are in no row
        known = cost[mask].sum()
        cost[mask] = mapped if mapped is not None else (
            cost[mask] * (y.completed / (y.claimant_factor * known) if known > 0
                          else y.factor / y.claimant_factor))
        notes.append({"year": y.year, "group": y.group, "layered": mapped is not None})
    return claimants.assign(cost=cost), notes


def developed(ds: Dataset) -> Dataset:
    """The dataset with its cells completed when they are an as-of view of at least two
    service years (by the project's [development] settings), as it is otherwise."""
    cells = ds.cells
    if cells.lags is None or cells.as_of is None or cells.completion is not None:
        return ds
    if cells.lags["year"].nunique() < 2:  # one year: no development to learn from
        return ds
    options = ds.config.development
    priors = (model_priors(cells, options) if options.method == "bornhuetter-ferguson"
              else {})
    done = complete(cells, options, development_edges(cells, ds.scheme), priors)
    return replace(ds, cells=completed_cells(cells, done))


def model_priors(cells: Cells, options: Development) -> dict[str, tuple[float, float]]:
    """Bornhuetter-Ferguson's priors for the latest year: ciplan's own forecast of it from
    the years before (completed by the chain ladder when there are two), at the latest
    year's known exposure per cohort: expected cost and claimants, for the portfolio ("")
    and for each group of `options.group_by`."""
    from forecasting.models.claims import ClaimsModel

    latest = max(cells.years)
    before = cells.until(latest - 1)
    if before.lags is not None and before.lags["year"].nunique() >= 2:
        before = completed_cells(before, complete(before))
    fc = ClaimsModel().fit(before).forecast(latest)
    cols = list(cells.spec.columns)
    known = cells.year(latest).table.groupby(cols, observed=True, as_index=False)[
        "exposure"].sum()
    rates = fc.cohorts[[*cols, "frequency", "mean_severity"]]
    at = known.merge(rates, on=cols, how="inner")
    at = at.assign(claimants=at["frequency"] * at["exposure"],
                   cost=at["frequency"] * at["exposure"] * at["mean_severity"])
    priors = {"": (float(at["cost"].sum()), float(at["claimants"].sum()))}
    if options.group_by:
        sums = at.groupby(at[options.group_by].astype(str))[["cost", "claimants"]].sum()
        priors |= {g: (float(r["cost"]), float(r["claimants"])) for g, r in sums.iterrows()}
    return priors


# quantiles of the oldest year's claimant costs that bound layers besides the plans' kinks
LAYER_QUANTILES = (0.5, 0.9, 0.99)


def development_edges(cells: Cells, scheme: Scheme) -> tuple[float, ...]:
    """The cost layers developed apart: the kinks of every year's plan in force (ordinary
    and special members) and quantiles of the most settled year's claimant costs; none
    under a reporting threshold (the layers below it are not in the claimants)."""
    if cells.reported_above > 0:
        return ()
    oldest = cells.claimants.loc[cells.claimants["year"] == min(cells.years), "cost"]
    kinks = [plan_levels(scheme.plans[y]) for y in cells.years if y in scheme.plans]
    quantiles = np.quantile(oldest, LAYER_QUANTILES) if len(oldest) else []
    edges = layer_edges(list(quantiles), *kinks)
    return tuple(float(e) for e in edges if e < oldest.max()) if len(oldest) else ()


def completion_sd(cells: Cells, year: int) -> float:
    """The spread the completion adds to the log cost level of `year`'s forecast: the
    latest completed year's log sd times its leverage on the trend (0 for complete data)."""
    if not cells.completion:
        return 0.0
    latest = max(cells.completion["years"], key=lambda y: y["year"])
    return float(latest["log_sd"]) * abs(trend_leverage(cells.table["year"].unique(), year))


def as_known(ds: Dataset) -> Callable[[int], Cells]:
    """For an as-of dataset, the cells a negotiator had for year t: the data as of t's
    negotiation date (never after the dataset's own), the years before t, completed. Each
    year's view is read once."""
    views: dict[int, Cells] = {}

    def known(year: int) -> Cells:
        if year not in views:
            date = min(ds.config.development.negotiation(year), ds.cells.as_of)
            view = load_data(ds.path, replace(ds.options, as_of=date), ds.config)
            views[year] = developed(view).cells.until(year - 1)
        return views[year]

    return known
