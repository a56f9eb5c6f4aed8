"""Cells with Apache Spark, for data that outgrow one machine: the same SQL as DuckDB
(forecasting.data.engines.sql) on Spark SQL. `local[2]` here; `spark://host:7077` (or yarn,
k8s://...) on a cluster, where the Parquet path must be readable by every executor."""

from __future__ import annotations

import os
import sys

from forecasting.data.cells import Cells
from forecasting.data.engines import NeedsDetail, Unsupported
from forecasting.data.engines.sql import (
    SPARK,
    cells_from_results,
    cells_sql,
    check_schemas,
    claims_view,
    members_view,
    parameters,
    settlement_offences_sql,
)
from forecasting.data.options import DataOptions, Source
from forecasting.errors import EngineError


def spark_session(master: str = "local[2]"):
    """A Spark session for ciplan (no UI; Arrow transfer; small shuffles for cell tables)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError("the spark engine needs pyspark: pip install 'ciplan[spark]'") from None
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


def cells_from_spark(source: Source, options: DataOptions) -> Cells:
    """Validate and aggregate with Spark SQL; raises NeedsDetail when anything is off."""
    if not source.parquet:
        raise Unsupported("the spark engine reads Parquet; got CSV files")
    if options.as_of is not None:
        raise Unsupported("the as-of view (--as-of) is read by the pandas engine")
    spec, reported_above = source.spec, options.reported_above
    age_col, has_region = check_schemas(source.members, source.claims, spec)
    spark = spark_session(options.spark_master)
    # paths go to the reader as values (glob characters escaped), never into SQL text
    spark.read.parquet(hadoop_literal(source.members)).createOrReplaceTempView("m_src")
    spark.read.parquet(hadoop_literal(source.claims)).createOrReplaceTempView("c_src")
    dates = settlement_offences_sql("c_src", source.claims)
    if dates and spark.sql(dates).first()["n"]:
        raise NeedsDetail("a claim settled before its care, or without a readable date")
    spark.sql(members_view("m_src", age_col, has_region)).createOrReplaceTempView("m")
    dup = spark.sql("SELECT COUNT(*) - COUNT(DISTINCT member_id, year) AS d FROM m").first()
    if dup["d"]:
        raise NeedsDetail("duplicate member-years")
    sql = cells_sql("SELECT * FROM m", claims_view("c_src"), spec, has_region,
                    reported_above, options.severity_summary, SPARK, options.threshold_rule)
    found = spark.sql(sql, args=SPARK.bind(sql, parameters(options))).toArrow()
    return cells_from_results([found], spec, reported_above, has_region,
                              options.severity_summary, rule=options.threshold_rule)


def hadoop_literal(path) -> str:
    """A path Hadoop's reader takes literally: its glob characters escaped."""
    return "".join(f"\\{c}" if c in "\\{}[]*?" else c for c in str(path))


class SparkEngine:
    """Parquet through Spark SQL, locally or on a cluster (options.spark_master)."""

    name = "spark"

    @property
    def failures(self) -> tuple[type[BaseException], ...]:
        from pyspark.errors import PySparkException

        return (PySparkException, OSError)

    def cells(self, source: Source, options: DataOptions) -> Cells:
        return cells_from_spark(source, options)


ENGINE = SparkEngine()
