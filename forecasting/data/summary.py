"""A streaming severity summary: per cohort, the count and the sum of claimants' annual
costs in log-spaced buckets. Engines build it in one pass (SQL) without holding claimants
in memory; layer prices come from it exactly at bucket edges and, between edges, by linear
interpolation of E[min(X, b)], whose error is bounded by one bucket's width."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PER_DECADE = 200  # buckets per factor of ten: edges 1.16 % apart


TINY = float(np.finfo("float64").tiny)  # only claimants (cost > 0) are bucketed


def bucket_of(cost: np.ndarray, per_decade: int = PER_DECADE) -> np.ndarray:
    """Bucket index of each cost > 0: floor(log10(cost) * per_decade), in any money unit
    (costs below 1 have negative buckets)."""
    return np.floor(np.log10(np.maximum(cost, TINY)) * per_decade).astype("int64")


def bucket_sql(column: str, per_decade: int = PER_DECADE) -> str:
    """The same bucket in SQL (DuckDB and Spark both have LN and FLOOR)."""
    return (f"CAST(FLOOR(LN(GREATEST({column}, {TINY!r})) / LN(10) * {per_decade}) "
            f"AS BIGINT)")


def summary_sql(keys: list[str], per_decade: int = PER_DECADE) -> str:
    """Counts and sums per cohort and bucket from a claimant view `cl` (cost > 0)."""
    cols = ", ".join(keys)
    return (f"SELECT {cols}, {bucket_sql('cost', per_decade)} AS bucket, COUNT(*) AS n, "
            f"SUM(cost) AS total FROM cl GROUP BY {cols}, bucket")


@dataclass(frozen=True)
class ContinuanceTable:
    """Claimants grouped by cost interval, as a continuance table (or a published table of
    loss data) gives them: interval i is [edges[i], edges[i+1]) (the last open above),
    holding counts[i] claimants whose costs total totals[i]. Layer prices are exact at the
    edges; between edges E[min(X, b)] is interpolated linearly inside the interval, an
    error bounded by the interval's width; inside the open top interval it is unknown
    (an error)."""

    edges: np.ndarray
    counts: np.ndarray
    totals: np.ndarray

    def lev(self, b: float) -> float:
        """E[min(X, b)] per claimant (money units of the table)."""
        n = np.asarray(self.counts, dtype="float64")
        if n.sum() == 0:
            return 0.0
        total = np.asarray(self.totals, dtype="float64")
        if math.isinf(b):
            return float(total.sum() / n.sum())
        lo = np.asarray(self.edges, dtype="float64")
        hi = np.r_[lo[1:], np.inf]
        # intervals wholly below b count in full, wholly above count b each; the interval
        # that holds b is interpolated between its exact values at its two edges
        below, above = hi <= b, lo >= b
        inside = ~below & ~above & np.isfinite(hi)
        value = total[below].sum() + b * n[above].sum()
        if inside.any():
            w = (b - lo[inside]) / (hi[inside] - lo[inside])
            value += float(((1 - w) * lo[inside] * n[inside] + w * total[inside]).sum())
        if (n[~below & ~above & ~np.isfinite(hi)] > 0).any():
            raise ValueError(f"{b:g} lies inside the open top interval (from {lo[-1]:g}): "
                             "the table does not determine E[min(X, b)] there")
        return float(value / n.sum())

    def layer(self, a: float, b: float) -> float:
        """Expected cost per claimant inside [a, b)."""
        return self.lev(b) - self.lev(a)


@dataclass(frozen=True)
class SeveritySummary:
    """Bucket counts and sums by cohort: `table` has the key columns, bucket, n, total."""

    table: pd.DataFrame
    keys: tuple[str, ...]
    per_decade: int = PER_DECADE

    @staticmethod
    def from_claimants(claimants: pd.DataFrame, keys: list[str],
                       per_decade: int = PER_DECADE) -> SeveritySummary:
        frame = claimants[[*keys, "cost"]].assign(
            bucket=bucket_of(claimants["cost"].to_numpy(), per_decade))
        table = frame.groupby([*keys, "bucket"], observed=True, as_index=False).agg(
            n=("cost", "size"), total=("cost", "sum"))
        return SeveritySummary(table, tuple(keys), per_decade)

    def edge(self, bucket: np.ndarray) -> np.ndarray:
        """Lower edge (CNY) of buckets."""
        return 10.0 ** (np.asarray(bucket, dtype="float64") / self.per_decade)

    def lev(self, b: float, rows: pd.Series | None = None) -> float:
        """E[min(X, b)] over the claimants of the selected rows (all by default)."""
        t = self.table if rows is None else self.table[rows]
        order = np.argsort(t["bucket"].to_numpy())
        buckets = t["bucket"].to_numpy()[order]
        # buckets side by side: the gaps between occupied buckets are empty intervals
        edges = np.unique(np.r_[self.edge(buckets), self.edge(buckets + 1)])
        at = np.searchsorted(edges, self.edge(buckets))
        counts, totals = np.zeros(len(edges)), np.zeros(len(edges))
        np.add.at(counts, at, t["n"].to_numpy(float)[order])
        np.add.at(totals, at, t["total"].to_numpy(float)[order])
        return ContinuanceTable(edges, counts, totals).lev(b)

    def layer(self, a: float, b: float, rows: pd.Series | None = None) -> float:
        """Expected cost per claimant inside [a, b), CNY."""
        return self.lev(b, rows) - self.lev(a, rows)

    def expand(self) -> pd.DataFrame:
        """Claimant rows rebuilt from the summary: each bucket's claimants at the bucket's
        mean cost (exact sums, costs to within one bucket). What the models read when the
        engine sent a summary instead of claimants."""
        t = self.table
        n = t["n"].to_numpy(dtype="int64")
        rows = np.repeat(np.arange(len(t)), n)
        out = t.iloc[rows][list(self.keys)].reset_index(drop=True)
        out["cost"] = (t["total"].to_numpy(float) / n)[rows]
        return out

    def claimants(self, band_width: int) -> pd.DataFrame:
        """`expand()` with each claimant's age at the middle of its age band (the summary
        keeps the band, not the age): claimant rows as the models read them."""
        out = self.expand()
        out["age"] = out["age_band"].astype("int64") + (band_width - 1) // 2
        return out
