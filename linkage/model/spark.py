"""Splink's Spark backend for batch linkage of data that outgrows one machine (local mode here).

Splink's Spark dialect needs its bundled similarity UDF jar (Jaro-Winkler, Damerau-Levenshtein);
without it the comparison SQL does not resolve.
"""

from __future__ import annotations

from typing import Any


class SparkUnavailableError(RuntimeError):
    """pyspark (or Java) is not installed."""


def spark_db_api(master: str = "local[2]", driver_memory: str = "3g") -> Any:
    """A Splink `SparkAPI` over a local Spark session with the similarity jar on the class path.

    `driver_memory` (the JVM heap; in local mode the driver runs the work): Spark's default 1g ran out
    of heap ("serve-Arrow" OutOfMemoryError, then the Python side waits forever) training on a
    20,000-person world. Only applies when this call starts the JVM."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise SparkUnavailableError(
            "--engine spark needs pyspark==4.3.0 (pip install pyspark==4.3.0) and a Java 17 runtime"
        ) from e
    from pyspark.errors import PySparkException
    from splink.backends.spark import SparkAPI, similarity_jar_location

    try:
        spark = (
            SparkSession.builder.master(master)
            .appName("regsosek-link")
            .config("spark.jars", similarity_jar_location())
            .config("spark.driver.memory", driver_memory)
            # Small local jobs: few shuffle partitions keep a laptop-sized link fast.
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except (PySparkException, OSError) as e:  # no Java: the JVM gateway never starts
        raise SparkUnavailableError(
            f"--engine spark could not start Spark ({type(e).__name__}); it needs a Java 17 runtime "
            "(java on PATH or JAVA_HOME)"
        ) from e
    spark.sparkContext.setLogLevel("ERROR")
    # persist instead of checkpoint: no checkpoint directory to manage in local mode.
    return SparkAPI(spark_session=spark, break_lineage_method="persist")  # type: ignore[no-untyped-call]
