"""The `ciplan` command: a thin layer over the library.

Each command calls the API; a CiplanError (bad input, impossible request) becomes one line
`Error: ...` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from forecasting.cohorts import CohortSpec
from forecasting.dataset import Dataset, load_data
from forecasting.errors import CiplanError
from forecasting.simulate import simulate_city
from optimization.results import history as history_table
from optimization.results import payouts_by_age
from pipelines.builtin import DEFAULT_SEED, builtin_data, write_city

app = typer.Typer(
    name="ciplan",
    help="Forecast critical illness insurance claims and optimise the premium and plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (members, claims, scheme.toml); "
                 "default: the built-in L-city data."),
]
ScaleOpt = Annotated[float, typer.Option(help="Share of L city's population to simulate.")]
EngineOpt = Annotated[str, typer.Option(help="auto (DuckDB for Parquet), duckdb or pandas.")]
ReportedOpt = Annotated[
    float, typer.Option("--reported-above", help="Claims are reported only for annual "
                        "costs above this (CNY); 0 = all reported.")]


def command(fn):
    """Register `fn` as a command whose domain errors end as `Error: ...` and exit 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CiplanError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
    return app.command()(wrapper)


def parse_years(text: str) -> tuple[int, ...]:
    """'2019-2021' or '2019,2020' -> (2019, 2020, 2021)."""
    try:
        if "-" in text:
            a, b = (int(x) for x in text.split("-"))
            return tuple(range(a, b + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise CiplanError(f"--years expected like 2019-2021; got {text!r}") from None


def open_data(data: Path | None, scale: float = 1.0, reported_above: float = 0.0,
              engine: str = "auto") -> Dataset:
    """Load --data, or the built-in L-city data (generated once) at `scale`."""
    with console.status("Reading and validating data…"):
        path = data if data is not None else builtin_data(scale=scale)
        return load_data(path, CohortSpec(), reported_above, engine)


@command
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the data directory into.")],
    scale: ScaleOpt = 1.0,
    years: Annotated[str, typer.Option(help="Years, e.g. 2019-2021 or 2019-2022 "
                                       "(2022 is held-out truth).")] = "2019-2021",
    seed: Annotated[int, typer.Option(help="Random seed.")] = DEFAULT_SEED,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Simulate L city's members and claims (calibrated to its 2019-2021 accounts)."""
    year_tuple = parse_years(years)
    if fmt not in ("parquet", "csv"):
        raise CiplanError(f"--format expected parquet or csv; got {fmt!r}")
    try:
        with console.status(f"Simulating L city {years} at scale {scale:g}…"):
            city = simulate_city(seed=seed, scale=scale, years=year_tuple)
    except ValueError as exc:
        raise CiplanError(str(exc)) from None
    write_city(city, out, fmt)
    typer.echo(f"Wrote {len(city.members):,} member-years and {len(city.claims):,} "
               f"settlements for {years} to {out}")


@command
def history(
    data: DataOpt = None,
    scale: ScaleOpt = 1.0,
    reported_above: ReportedOpt = 0.0,
    engine: EngineOpt = "auto",
    by_age: Annotated[bool, typer.Option("--by-age", help="Payouts (CNY) by age band and "
                                         "year instead of the accounts.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Print the insurer's yearly accounts under each year's plan in force."""
    if fmt not in ("table", "csv", "json"):
        raise CiplanError(f"--format expected table, csv or json; got {fmt!r}")
    ds = open_data(data, scale, reported_above, engine)
    if by_age:
        frame = pd.DataFrame({
            str(y): payouts_by_age(ds.cells, y, ds.scheme.plan(y)) for y in ds.years})
        frame.index = [ds.cells.spec.label(b) for b in frame.index]
        frame = frame.rename_axis("age_band").reset_index()
    else:
        frame = history_table(ds.cells, ds.scheme).drop(columns="eligible_above_deductible")
    if fmt == "json":
        typer.echo(json.dumps(frame.to_dict(orient="records"), indent=2))
    elif fmt == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        Console().print(_history_rich(frame))


def _history_rich(frame: pd.DataFrame) -> Table:
    if "age_band" in frame.columns:  # payouts by age band: already one column per year
        table = Table(title="Payouts by age band under the plan in force (CNY)")
        for col in frame.columns:
            table.add_column(col, justify="right")
        for _, r in frame.iterrows():
            table.add_row(r["age_band"], *(f"{v:,.0f}" for v in r.iloc[1:]))
        return table
    table = Table(title="Yearly result under the plan in force (CNY)")
    table.add_column("")
    for year in frame["year"]:
        table.add_column(str(year), justify="right")
    formats = {"insured_rate": "{:.1%}", "loss_ratio": "{:.1%}", "effective_ratio": "{:.1%}",
               "premium_per_capita": "{:,.2f}"}
    for col in frame.columns[1:]:
        fmt = formats.get(col, "{:,.0f}")
        table.add_row(col, *(fmt.format(v) for v in frame[col]))
    return table


def main() -> None:
    """Entry point of the `ciplan` console script."""
    sys.exit(app())
