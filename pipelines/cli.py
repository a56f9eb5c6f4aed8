"""The `ciplan` command: a thin layer over the library.

Each command calls the API; a UserError (bad input, impossible request) becomes one line
`Error: ...` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from pipelines import process

if __name__ == "__main__":  # `python -m pipelines.cli`: started as the console script is
    process.start()

import datetime
import functools
import inspect
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from forecasting.config import ProjectConfig, load_project
from forecasting.data.dataset import DataKey, Dataset, data_key, load_data
from forecasting.data.engines import AUTO, engine_names
from forecasting.data.options import MAX_COST, DataOptions
from forecasting.data.publish import check_out
from forecasting.errors import UserError
from forecasting.scheme.accounts import history as history_table
from forecasting.scheme.accounts import payouts_by_age
from pipelines.workflows.builtin import DEFAULT_SEED, builtin_data, write_city

app = typer.Typer(
    name="ciplan",
    help="Forecast critical illness insurance claims and optimise the premium and plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

ScaleOpt = Annotated[float, typer.Option(help="Share of L city's population to simulate.")]


@dataclass(frozen=True)
class DataArgs:
    """The data a command reads: --data (or the built-in L city at --scale), the project
    configuration (--project, or ciplan.toml in the data directory) with the command
    line's overrides, and how to read the data."""

    data: Path | None
    scale: float
    project: Path | None
    overrides: dict
    engine: str
    spark_master: str
    severity_summary: bool
    encoding: str
    max_cost: float
    as_of: datetime.date | None
    threads: int | None = None  # DuckDB's (not an option: see `train`)

    def config(self, path: Path) -> ProjectConfig:
        """The project configuration of the data at `path`, overridden by the options."""
        return load_project(self.project, path).overridden(**self.overrides)

    def options(self, config: ProjectConfig) -> DataOptions:
        return DataOptions(reported_above=config.data.reported_above,
                           threshold_rule=config.data.threshold_rule, engine=self.engine,
                           spark_master=self.spark_master,
                           severity_summary=self.severity_summary,
                           spec=config.cohorts.spec(), encoding=self.encoding,
                           max_cost=self.max_cost, as_of=self.as_of, threads=self.threads)

    def path(self) -> Path:
        """--data, or the built-in L-city data (generated once) at `scale`."""
        return self.data if self.data is not None else builtin_data(scale=self.scale)

    def open(self) -> Dataset:
        """Load --data, or the built-in L-city data at `scale`."""
        with console.status("Reading and validating data…"):
            return self.read()

    def read(self) -> Dataset:
        """`open` without its status line (for a caller that shows its own progress)."""
        from forecasting.models.completion import developed

        path = self.path()
        config = self.config(path)
        return developed(load_data(path, self.options(config), config))

    def key(self) -> DataKey:
        """The data checked up to their tables and fingerprinted, not read whole: what
        `ciplan run` decides from whether anything must be computed (see data_key)."""
        with console.status("Checking data…"):
            path = self.path()
            config = self.config(path)
            return data_key(path, self.options(config), config)


# The data options, declared once and added to every command that reads data.
DATA_PARAMETERS = {
    "data": (Path | None, None, typer.Option(
        "--data", help="Data directory (members, claims, scheme.toml); default: the "
        "built-in L-city data.")),
    "scale": (float, 1.0, typer.Option(help="Share of L city's population to simulate "
                                       "(built-in data).")),
    "project": (Path | None, None, typer.Option(
        "--project", help="Project configuration TOML (cohorts, data, models); default: "
        "ciplan.toml in the data directory, else the defaults.")),
    "reported_above": (float | None, None, typer.Option(
        "--reported-above", help="Claims are reported only from this annual cost on "
        "(money units of the data); 0 = all reported. Overrides \\[data] reported_above.")),
    "threshold_rule": (str | None, None, typer.Option(
        "--threshold-rule", help="above or at-or-above: whether a cost equal to "
        "--reported-above is reported. Overrides \\[data] threshold_rule.")),
    "currency": (str | None, None, typer.Option(
        "--currency", help="The money unit printed beside amounts. Overrides \\[data] "
        "currency.")),
    "band_width": (int | None, None, typer.Option(
        "--band-width", help="Years per age band. Overrides \\[cohorts] band_width.")),
    "age_max": (int | None, None, typer.Option(
        "--age-max", help="Age where the last, open band starts. Overrides \\[cohorts] "
        "age_max.")),
    "keys": (str | None, None, typer.Option(
        "--keys", help="Cohort keys, comma-separated member columns (e.g. sex,district). "
        "Overrides \\[cohorts] keys.")),
    "frequency_rows": (str | None, None, typer.Option(
        "--frequency-rows", help="cells or ages (fit frequency on single ages: the member "
        "rows). Overrides \\[models] frequency_rows.")),
    "engine": (str, AUTO, typer.Option(
        help=f"{', '.join(engine_names())}: auto takes DuckDB for Parquet, pandas for CSV.")),
    "spark_master": (str, "local[2]", typer.Option(
        "--spark-master", help="Spark master for --engine spark (local[2], "
        "spark://host:7077).")),
    "severity_summary": (bool, False, typer.Option(
        "--severity-summary", help="Claimants' annual costs leave the engine as log-bucket "
        "counts and sums per cohort, not one row each (memory bounded by cohorts x "
        "buckets; costs to within 1.2 %, sums exact).")),
    "as_of": (str | None, None, typer.Option(
        "--as-of", help="Read the data as known on this date (YYYY-MM-DD): only claims "
        "settled by then, years up to its own.")),
    "encoding": (str, "utf-8", typer.Option(
        help="Text encoding of CSV files, e.g. gbk (a UTF-8 byte-order mark is accepted).")),
    "max_cost": (float, MAX_COST, typer.Option(
        "--max-cost", help="A claim or a member-year costing more than this (money units "
        "of the data) is refused as absurd.")),
}


def reads_data(fn):
    """Give `fn` the data options (DATA_PARAMETERS) as one argument `data: DataArgs`."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for name, p in sig.parameters.items() if name != "data"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                               annotation=Annotated[kind, option])
             for name, (kind, default, option) in DATA_PARAMETERS.items()]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        given = {name: kwargs.pop(name) for name in DATA_PARAMETERS}
        keys = given["keys"]
        overrides = {
            "data__reported_above": given["reported_above"],
            "data__threshold_rule": given["threshold_rule"],
            "data__currency": given["currency"],
            "cohorts__band_width": given["band_width"], "cohorts__age_max": given["age_max"],
            "cohorts__keys": None if keys is None else [k.strip() for k in keys.split(",")
                                                        if k.strip()],
            "models__frequency_rows": given["frequency_rows"],
        }
        args_ = DataArgs(given["data"], given["scale"], given["project"], overrides,
                         given["engine"], given["spark_master"], given["severity_summary"],
                         given["encoding"], given["max_cost"], parse_date(given["as_of"]))
        return fn(*args, data=args_, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[
        *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own], *extra])
    return wrapper


def command(fn=None, *, name: str | None = None):
    """Register `fn` as a command (named `name`, default its own name) whose domain errors
    end as `Error: ...` and exit 2."""
    if fn is None:
        return functools.partial(command, name=name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        process.collect()  # the command line's imports are done (the command's own: below)
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
    return app.command(name=name)(wrapper)


def parse_date(text: str | None) -> datetime.date | None:
    """'2022-01-31' -> a date (None stays None)."""
    if text is None:
        return None
    try:
        return datetime.date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--as-of expected a date like 2022-01-31; got {text!r}") from None


def parse_years(text: str) -> tuple[int, ...]:
    """'2019-2021' or '2019,2020' -> (2019, 2020, 2021)."""
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-"))
            return tuple(range(a, b + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--years expected like 2019-2021; got {text!r}") from None


@command
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the data directory into.")],
    scale: ScaleOpt = 1.0,
    years: Annotated[str, typer.Option(help="Years, e.g. 2019-2021 or 2019-2022 "
                                       "(2022 is held-out truth).")] = "2019-2021",
    seed: Annotated[int, typer.Option(help="Random seed.")] = DEFAULT_SEED,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv, or settlements (the "
                                     "platform's settlement records and a roster, GBK CSV "
                                     "with Chinese headers, for `ciplan import`).")
                   ] = "parquet",
    regions: Annotated[int, typer.Option(help="Simulate this many cities as one data set, "
                                         "Parquet partitioned by year and region.")] = 0,
) -> None:
    """Simulate L city's members and claims (calibrated to its 2019-2021 accounts)."""
    year_tuple = parse_years(years)
    if fmt not in ("parquet", "csv", "settlements"):
        raise UserError(f"--format expected parquet, csv or settlements; got {fmt!r}")
    check_out(out, "settlements" if fmt == "settlements" else "data")
    if regions < 0 or (regions and fmt != "parquet"):
        raise UserError(f"--regions expected a count >= 0 with --format parquet; "
                          f"got {regions} with {fmt}")
    if regions:
        from pipelines.workflows.regions import write_regions

        with _progress() as progress:
            write_regions(out, regions, seed, scale, year_tuple, progress)
        typer.echo(f"Wrote {regions} regions for {years} to {out} (partitioned Parquet)")
        return
    with console.status(f"Simulating L city {years} at scale {scale:g}…"):
        from forecasting.simulate import simulate_city  # SciPy: only when simulating

        city = simulate_city(seed=seed, scale=scale, years=year_tuple)
    if fmt == "settlements":
        from pipelines.workflows.records import write_settlement_records

        write_settlement_records(city, out, seed)
        typer.echo(f"Wrote settlement records and a roster for {years} to {out}")
        return
    write_city(city, out, fmt)
    typer.echo(f"Wrote {len(city.members):,} member-years and {len(city.claims):,} "
               f"settlements for {years} to {out}")


@command(name="import")
def import_records(
    records: Annotated[Path, typer.Option(help="Settlement records (CSV in UTF-8 or GBK, "
                                          "Parquet or XLSX).")],
    roster: Annotated[Path, typer.Option(help="The enrolment roster (same formats).")],
    out: Annotated[Path, typer.Option(help="Folder for the data directory.")],
    mapping: Annotated[Path | None, typer.Option(
        help="Mapping TOML: column names, the eligible cost rule, codes (default: the one "
        "shipped, forecasting/data/defaults/settlements.toml).")] = None,
    scheme: Annotated[Path | None, typer.Option(
        help="scheme.toml to put beside the data (plans and markets by year).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Turn the platform's settlement records and a roster into a data directory."""
    with process.importing():
        from pipelines.workflows.records import import_records as run_import

    if fmt not in ("parquet", "csv"):
        raise UserError(f"--format expected parquet or csv; got {fmt!r}")
    check_out(out, "data")
    with console.status("Importing settlement records…"):
        found = run_import(records, roster, out, mapping, scheme, fmt)
    for line in found.said:
        typer.echo(line)
    typer.echo(f"Wrote {len(found.members):,} member-years and {len(found.claims):,} claims "
               f"to {out}; {found.rejected:,} rows left out (import_report.json)")


@command
@reads_data
def history(
    data: DataArgs,
    by_age: Annotated[bool, typer.Option("--by-age", help="Payouts by age band and "
                                         "year instead of the accounts.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Print the insurer's yearly accounts under each year's plan in force."""
    if fmt not in ("table", "csv", "json"):
        raise UserError(f"--format expected table, csv or json; got {fmt!r}")
    ds = data.open()
    if by_age:
        frame = pd.DataFrame({
            str(y): payouts_by_age(ds.cells, y, ds.scheme.plan(y)) for y in ds.years})
        frame.index = [ds.cells.spec.label(b) for b in frame.index]
        frame = frame.rename_axis("age_band").reset_index()
    else:
        frame = history_table(ds.cells, ds.scheme).drop(columns="eligible_above_deductible")
        frame = _with_development(frame, ds.cells.completion)
    if ds.cells.as_of is not None and not ds.cells.completion:
        typer.echo(f"Note: data as of {ds.cells.as_of} hold one service year "
                   f"({', '.join(map(str, ds.years))}): nothing to learn its development "
                   "from, so it is shown as settled by then, not completed", err=True)
    if fmt == "json":
        typer.echo(json.dumps(frame.to_dict(orient="records"), indent=2))
    elif fmt == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        Console().print(_history_rich(frame, ds.config.data.currency))


def _with_development(frame: pd.DataFrame, completion: dict | None) -> pd.DataFrame:
    """The accounts with each year's claims development (as-of data): cost settled by the
    as-of date, completed cost, completion factor and the completed cost's interval."""
    if not completion:
        return frame
    dev = pd.DataFrame(completion["years"]).rename(columns={
        "reported": "cost_settled", "completed": "cost_completed",
        "factor": "completion_factor", "low": "completed_low", "high": "completed_high"})
    cols = ["year", "cost_settled", "cost_completed", "completion_factor", "completed_low",
            "completed_high"]
    return frame.merge(dev[cols], on="year", how="left")


def _warn(said: list[str]) -> None:
    """What the models said while fitting or forecasting, one `Warning: ...` line each on
    stderr (`train`, `forecast` and `run` alike)."""
    for text in said:
        typer.echo(f"Warning: {text}", err=True)


@command
@reads_data
def train(data: DataArgs) -> None:
    """Backtest candidate frequency and severity models, log them to MLflow, register the
    champions as claim-frequency and claim-severity @champion."""
    with process.importing():
        from pipelines.workflows.train import check_trainable, mean_scores
        from pipelines.workflows.train import train as run_train
        from pipelines.workflows.train_log import train_logger

    with train_logger() as logger:  # started first: it imports MLflow while we read
        # with a core fewer than the machine has, so that the helper's imports (its
        # critical path: it logs until after the last fit) are not slowed by the read's
        ds = replace(data, threads=max(1, (os.cpu_count() or 1) - 1)).open()
        check_trainable(ds)  # before the progress display (it would leave a blank line)
        with _progress() as progress:
            result = run_train(ds, progress, logger)
    Console().print(_frame_rich(mean_scores(result).T, "Backtest, mean over origin years; "
                                "score: the median the champion is chosen on"))
    _warn(result.warnings)
    if ds.cells.as_of is not None:
        typer.echo(f"Data as of {ds.cells.as_of}; each backtest origin trained on the data "
                   f"as of its {ds.config.development.negotiation_date} (MM-DD)", err=True)
    if result.left_out:
        typer.echo(f"Backtest years left out of the scores (too few claimants, or trained "
                   f"on one service year as reported on the as-of date): "
                   f"{', '.join(map(str, result.left_out))}", err=True)
    typer.echo(f"Champions: frequency {result.champions['frequency']}, severity "
               f"{result.champions['severity']} (versions {result.versions}); "
               f"MLflow run {result.run_id}")


@command
@reads_data
def forecast(
    year: Annotated[int, typer.Option(help="The year to forecast (after the data's years).")],
    out: Annotated[Path, typer.Option(help="Folder for forecast.csv/.parquet, summary.json "
                                      "and the forecast (forecast.json, Parquet tables).")],
    data: DataArgs,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Use the models of this train run instead of the champions.")] = None,
    scenarios: Annotated[int, typer.Option(help="Number of scenarios for the 5-95 % range.")
                         ] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed of the scenarios.")] = 0,
) -> None:
    """Forecast claims of a year by cohort with the registered champion models."""
    with process.importing():
        from pipelines.workflows.forecast_year import run_forecast

    if scenarios < 20:
        raise UserError(f"--scenarios expected at least 20; got {scenarios}")
    check_out(out, "forecast")
    ds = data.open()
    with console.status(f"Forecasting {year}…"):
        result = run_forecast(ds, year, out, run_id, scenarios, seed)
    s = result.summary
    _warn(s["warnings"])
    payout = (f"payout {s['currency']} {s['payout_expected']:,.0f} (90 % range "
              f"{s['payout_p05']:,.0f} to {s['payout_p95']:,.0f})" if "payout_expected" in s
              else "no plan in force to price (scheme.toml)")
    typer.echo(f"{year}: {s['insured']:,.0f} insured, {s['claimants']:,.0f} claimants, "
               f"{payout}; written to {out}; MLflow run {result.run_id}")


@command
def optimize(
    out: Annotated[Path, typer.Option(help="Folder for plan.json, shadow_prices.csv and "
                                      "frontier.csv.")],
    forecast_dir: Annotated[Path | None, typer.Option(
        "--forecast", help="A `ciplan forecast` output folder.")] = None,
    forecast_run: Annotated[str | None, typer.Option(
        "--forecast-run", help="Or the MLflow run id of a forecast.")] = None,
    objective: Annotated[str, typer.Option(
        help="min-loss (least expected loss), break-even (lowest premium with expected "
        "loss <= 0, today's benefits), risk (lowest premium meeting the risk appetite, "
        "today's benefits) or cvar (least loss within the CVaR budget).")] = "min-loss",
    solver: Annotated[str | None, typer.Option(help="highs or cbc (default: the config's).")
                      ] = None,
    config: Annotated[Path | None, typer.Option(help="Plan-space TOML (default: "
                                                "optimization/defaults/plan_space.toml).")] = None,
    frontier_points: Annotated[int, typer.Option(help="Points on the loss-benefit frontier.")
                               ] = 25,
    free_premium: Annotated[bool, typer.Option(
        "--free-premium", help="Let min-loss and cvar choose the premium within the budget "
        "(default: the config's fixed premium).")] = False,
) -> None:
    """Find the plan that minimises the insurer's loss under the member-benefit rules."""
    with process.importing():
        from optimization.objectives import OBJECTIVES
        from optimization.space import SOLVERS, load_space
        from pipelines.workflows.propose import load_forecast, run_optimize

    if objective not in OBJECTIVES:
        raise UserError(f"--objective expected one of {', '.join(OBJECTIVES)}; "
                          f"got {objective!r}")
    if solver is not None and solver not in SOLVERS:
        raise UserError(f"--solver expected one of {', '.join(SOLVERS)}; got {solver!r}")
    check_out(out, "plan")
    space = load_space(config)
    if free_premium:
        space = space.with_free_premium()
    fc = load_forecast(forecast_dir, forecast_run)
    with console.status(f"Optimising ({objective})…"):
        result = run_optimize(fc, space, objective, out, solver, frontier_points)
    o, before = result.optimum, result.document["status_quo"]["kpis"]
    k, p = o.kpis, o.plan
    unit = result.document["currency"]
    typer.echo(
        f"{objective}: {o.status} ({o.method}, {o.plans_priced:,} plans priced); premium "
        f"{p.premium_per_capita:.2f} {unit} per capita, deductible {p.deductible:,.0f}, ratios "
        f"{' / '.join(f'{r:.0%}' for r in p.ratios)}, cap "
        f"{'none' if p.cap is None else f'{p.cap:,.0f}'}; expected loss {unit} "
        f"{k.expected_loss:,.0f} (today {before['expected_loss']:,.0f}); effective ratio "
        f"{k.effective_ratio:.1%}; written to {out}; MLflow run {result.run_id}")
    for note in result.document["notes"]:  # the optimiser's, and the rules today's plan breaks
        typer.echo(f"Note: {note}")


@command
def project(
    out: Annotated[Path, typer.Option(help="Folder for term.csv and settlement.parquet.")],
    forecast_dir: Annotated[Path | None, typer.Option(
        "--forecast", help="A `ciplan forecast` output folder.")] = None,
    forecast_run: Annotated[str | None, typer.Option(
        "--forecast-run", help="Or the MLflow run id of a forecast.")] = None,
    plan: Annotated[Path | None, typer.Option(
        "--plan", help="A `ciplan optimize` folder (default: today's plan).")] = None,
    years: Annotated[int | None, typer.Option(
        help="Years of the term (default: the config's, 3).")] = None,
    config: Annotated[Path | None, typer.Option(help="Plan-space TOML (term, contract).")
                      ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the scenarios.")] = 0,
) -> None:
    """Project a plan over the contract's term: each year and the total, before and after
    settlement, with the fund's position."""
    with process.importing():
        from optimization.space import load_space
        from pipelines.conventions import currency_of
        from pipelines.workflows.propose import load_forecast
        from pipelines.workflows.term import run_term

    check_out(out, "term")
    space = load_space(config)
    if years is not None:
        if not 1 <= years <= 10:
            raise UserError(f"--years expected 1 to 10; got {years}")
        space = space.model_copy(update={"term": space.term.model_copy(
            update={"years": years})})
    fc = load_forecast(forecast_dir, forecast_run)
    with console.status(f"Projecting {space.term.years} years…"):
        result = run_term(fc, space, out, plan, seed)
    # the money unit is user text: never read as rich markup
    table = Table(title=f"The term from {fc.year} ({escape(currency_of(fc.provenance))}; "
                  "expected; 5–95 % range of the loss)")
    for col in ("year", "premium", "deductible", "loss before", "range", "loss after",
                "range after", "fund top-up", "refund"):
        table.add_column(col, justify="right")
    for _, r in result.projection.years.iterrows():
        prem = "" if r["year"] == "term" else f"{r['premium_per_capita']:.2f}"
        ded = "" if r["year"] == "term" else f"{r['deductible']:,.0f}"
        table.add_row(str(r["year"]), prem, ded, f"{r['expected_loss_before']:,.0f}",
                      f"{r['loss_p05_before']:,.0f} to {r['loss_p95_before']:,.0f}",
                      f"{r['expected_loss_after']:,.0f}",
                      f"{r['loss_p05_after']:,.0f} to {r['loss_p95_after']:,.0f}",
                      f"{r['fund_topup']:,.0f}", f"{r['fund_refund']:,.0f}")
    Console().print(table)
    typer.echo(f"Written to {out} (term.csv, settlement.parquet)")


@command
def report(
    plans: Annotated[list[Path], typer.Option("--plans", help="Plan folders from `ciplan "
                                              "optimize` (repeat the option).")],
    out: Annotated[Path, typer.Option(help="Folder for report.html and report.xlsx.")],
    lang: Annotated[str, typer.Option(help="zh or en.")] = "en",
) -> None:
    """Write the negotiation report (HTML and XLSX) of some plans, logged to their runs."""
    with process.importing():
        from pipelines.conventions import check_lang
        from pipelines.report.document import publish_report, read_plans
        from pipelines.tracking import tracking_uri
        from pipelines.workflows.run_all import log_report, runs_not_in_store

    check_lang(lang)
    check_out(out, "report")
    proposals = read_plans(plans)
    runs = {p.key: p.doc["run_id"] for p in proposals if p.doc.get("run_id")}
    missing = runs_not_in_store(list(runs.values()))
    folder = publish_report(proposals, out, lang)
    log_report(folder, {k: r for k, r in runs.items() if r not in missing}, lang)
    pdf = " and report.pdf" if (folder / "report.pdf").exists() else ""
    typer.echo(f"Wrote {folder / 'report.html'}, report.xlsx{pdf}")
    if missing:
        typer.echo(f"Not logged to MLflow: the runs of plans "
                   f"{', '.join(k for k, r in runs.items() if r in missing)} are not in the "
                   f"store at {tracking_uri()} (made against another store?)")


@command
@reads_data
def run(
    data: DataArgs,
    out: Annotated[Path, typer.Option(help="Folder for forecast, plans and report.")] = Path(
        "out/run"),
    lang: Annotated[str, typer.Option(help="Report language: zh or en.")] = "en",
    config: Annotated[Path | None, typer.Option(help="Plan-space TOML.")] = None,
) -> None:
    """The whole job: data, train, forecast next year, the standard proposals, the report."""
    with process.importing():
        from optimization.space import load_space
        from pipelines.conventions import check_lang
        from pipelines.tracking import tracking_uri
        from pipelines.workflows.run_all import run_all, run_outputs

    check_lang(lang)
    run_outputs(out)
    space = load_space(config)
    # the data are read whole only if something must be computed (or they were never
    # seen passing the checks): a re-run with nothing changed only hashes them
    key = data.key()
    with _progress() as progress:
        def read() -> Dataset:
            task = progress.add_task("Reading and validating data…", total=None)
            try:
                return data.read()
            finally:
                progress.remove_task(task)

        summary = run_all(key, space, out, lang, say=progress.console.print,
                          progress=progress, load=read)
    _warn(summary.warnings)
    typer.echo(f"Report: {summary.report}")
    typer.echo(f"Plans: {', '.join(f'{k}={v}' for k, v in summary.plan_runs.items())}; "
               f"forecast run {summary.forecast_run}; train run {summary.train_run}")
    for key, notes in summary.notes.items():
        for note in notes:
            typer.echo(f"Note: proposal {key}: {note}")
    if summary.reused:
        typer.echo("Reused: " + "; ".join(summary.reused))
    typer.echo(ui_hint(tracking_uri(), plan_experiment_id()))


def plan_experiment_id() -> str | None:
    """The id of the plan experiment in the store, if it has one."""
    from pipelines.tracking import PLAN_EXPERIMENT, connect

    found = connect().get_experiment_by_name(PLAN_EXPERIMENT)
    return None if found is None else found.experiment_id


def ui_hint(uri: str, experiment_id: str | None = None) -> str:
    """The store the runs went to, a command that opens the MLflow UI on it and, given the
    plan experiment, the address of its runs table (the proposals side by side)."""
    from pipelines.tracking import UI_ADDRESS, runs_page

    server = uri.startswith(("http://", "https://"))
    hint = (f"MLflow store: {uri} (a tracking server: open {uri} in a browser)" if server
            else f"MLflow store: {uri} (open the UI with `make ui STORE={uri}`)")
    if experiment_id is None:
        return hint
    return (f"{hint}\nProposals side by side: "
            f"{runs_page(uri if server else UI_ADDRESS, experiment_id)}")


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    class _Progress(Progress):
        """A progress display that leaves nothing behind when its command fails: on a
        file or pipe rich ends the display with an empty line, which stood before the one
        `Error: …` line of bad input."""

        def __exit__(self, exc_type, exc, tb):
            if exc_type is None:
                return super().__exit__(exc_type, exc, tb)
            self.live.transient = True
            self.live.stop()
            return None

    return _Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                     console=console)


def _frame_rich(frame: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    table.add_column("")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for name, row in frame.iterrows():
        table.add_row(str(name), *(f"{v:.4g}" for v in row))
    return table


def _history_rich(frame: pd.DataFrame, currency: str) -> Table:
    if "age_band" in frame.columns:  # payouts by age band: already one column per year
        table = Table(title=f"Payouts by age band under the plan in force "
                      f"({escape(currency)})")  # user text, never rich markup
        for col in frame.columns:
            table.add_column(col, justify="right")
        for _, r in frame.iterrows():
            table.add_row(r["age_band"], *(f"{v:,.0f}" for v in r.iloc[1:]))
        return table
    table = Table(title=f"Yearly result under the plan in force ({escape(currency)})")
    table.add_column("")
    for year in frame["year"]:
        table.add_column(str(year), justify="right")
    formats = {"insured_rate": "{:.1%}", "loss_ratio": "{:.1%}", "effective_ratio": "{:.1%}",
               "premium_per_capita": "{:,.2f}", "completion_factor": "{:.4f}"}
    for col in frame.columns[1:]:
        fmt = formats.get(col, "{:,.0f}")
        table.add_row(col, *(fmt.format(v) for v in frame[col]))
    return table


def main() -> None:
    """Entry point of the `ciplan` console script."""
    try:
        app()
    except SystemExit as done:
        process.end(done.code)
    process.end(0)


if __name__ == "__main__":
    main()
