"""Cells with Apache Spark, for data that outgrow one machine: the same SQL as DuckDB
(forecasting.aggregation) on Spark SQL. `local[2]` here; `spark://host:7077` (or yarn,
k8s://...) on a cluster, where the Parquet path must be readable by every executor."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from forecasting.aggregation import (
    SPARK,
    NeedsDetail,
    cells_from_results,
    cells_sql,
    claims_view,
    members_view,
)
from forecasting.cells import Cells
from forecasting.cohorts import CohortSpec
from forecasting.engine_duckdb import check_schemas
from forecasting.errors import CiplanError


def spark_session(master: str = "local[2]"):
    """A Spark session for ciplan (no UI; Arrow transfer; small shuffles for cell tables)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CiplanError("the spark engine needs pyspark: pip install 'ciplan[spark]'") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (SparkSession.builder.master(master).appName("ciplan")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.memory", os.environ.get("CIPLAN_SPARK_DRIVER_MEMORY", "2g"))
            .getOrCreate())


def cells_from_spark(members_path: Path, claims_path: Path, spec: CohortSpec,
                     reported_above: float, years_with_plan: list[int],
                     master: str = "local[2]", summary: bool = False) -> Cells:
    """Validate and aggregate with Spark SQL; raises NeedsDetail when anything is off."""
    age_col, has_region = check_schemas(members_path, claims_path)
    spark = spark_session(master)
    spark.read.parquet(str(members_path)).createOrReplaceTempView("m_src")
    spark.read.parquet(str(claims_path)).createOrReplaceTempView("c_src")
    spark.sql(f"CREATE OR REPLACE TEMP VIEW m AS {members_view('m_src', age_col, has_region)}")
    dup = spark.sql("SELECT COUNT(*) - COUNT(DISTINCT member_id, year) AS d FROM m").first()
    if dup["d"]:
        raise NeedsDetail("duplicate member-years")
    sql = cells_sql("SELECT * FROM m", claims_view("c_src"), spec, has_region,
                    reported_above, summary, SPARK)
    return cells_from_results([spark.sql(sql).toArrow()], spec, reported_above,
                              years_with_plan, has_region, summary)
