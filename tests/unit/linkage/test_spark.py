"""`--engine spark`: the same links as DuckDB on a small file (Splink's SparkAPI, local mode)."""

from __future__ import annotations

import pytest
from factories import make_master, make_records

from linkage.batch import link_file, train_artefact
from linkage.normalise import prepare_table

pytest.importorskip("pyspark", reason="optional extra: pip install -e .[spark]")


@pytest.mark.slow
def test_spark_links_equal_duckdb_links() -> None:
    from linkage.model.spark import spark_db_api

    master = make_master(300)
    records, truth = make_records(master, share=0.1)
    artefact = train_artefact(prepare_table(master), prepare_table(records), "dtks", max_pairs=30_000, seed=1)
    duck, _ = link_file(master, records, artefact=artefact, source="dtks")
    spark, _ = link_file(master, records, artefact=artefact, source="dtks", db_api=spark_db_api())
    assert spark.column("master_record_id").to_pylist() == duck.column("master_record_id").to_pylist()
    assert spark.column("band").to_pylist() == duck.column("band").to_pylist()
    for a, b in zip(spark.column("match_weight").to_pylist(), duck.column("match_weight").to_pylist(), strict=True):
        assert a == pytest.approx(b, abs=1e-9)
    assert [truth[r] for r in duck.column("record_id").to_pylist()] == duck.column("master_record_id").to_pylist()
