"""`train --engine spark`: the same training steps on Splink's Spark backend give a usable model close to
DuckDB's on a small generated world (one local Spark session for the module: start-up is slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linkage.batch import link_file
from linkage.evaluate import evaluate_links
from linkage.model.artefact import ModelArtefact
from services.world import load_world_source
from synthetic.world import generate_world

pytest.importorskip("pyspark", reason="optional extra: pip install -e .[spark]")

# Tolerances between the DuckDB- and the Spark-trained model on the same world.
M_TOL = 0.02  # absolute, per comparison level
# u, relative per level: the world is small, so both engines sample every pair, but DuckDB stops early
# (Splink's chunks, once every level has 100 counts: relative sd <= 1/sqrt(100)) while Spark counts all
# pairs in one chunk (`train_model`); 3 sd. Levels too rare to stop early get identical counts. A level
# whose u is a few percent can still move by a third between the two samples (seen in CI: 0.33 relative
# on a u of 0.024 for "same district"): such a level passes when it is within U_ABS_TOL absolute.
U_REL_TOL = 0.3
U_ABS_TOL = 0.01
SCORE_TOL = 0.01  # link precision / recall at auto and auto+review


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from linkage.model.spark import spark_db_api

    world = tmp_path_factory.mktemp("spark-world")
    generate_world(world, persons=400, seed=12)
    master, records = load_world_source(str(world), "dtks")
    # link without a model trains first: on DuckDB, and on Spark with --engine spark
    duck_links, duck = link_file(master, records, source="dtks")
    spark_links, spark = link_file(master, records, source="dtks", db_api=spark_db_api())
    return {
        "master": master,
        "records": records,
        "truth": pq.read_table(world / "truth.parquet"),
        "duck": (duck, duck_links),
        "spark": (spark, spark_links),
    }


def _levels(artefact: ModelArtefact) -> list[dict[str, Any]]:
    return [
        {"comparison": c["output_column_name"], **lv}
        for c in artefact.model["comparisons"]
        for lv in c["comparison_levels"]
        if not lv.get("is_null_level")
    ]


def test_spark_trained_model_is_duckdb_sql_with_the_same_spec(trained: dict[str, Any]) -> None:
    duck, spark = trained["duck"][0], trained["spark"][0]
    assert spark.metadata["training"]["engine"] == "spark"
    assert duck.metadata["training"]["engine"] == "duckdb"
    assert spark.spec == duck.spec
    assert spark.model["sql_dialect"] == "duckdb"
    # same SQL, level by level (the artefact format does not depend on the engine)
    assert [lv["sql_condition"] for lv in _levels(spark)] == [lv["sql_condition"] for lv in _levels(duck)]


def test_spark_m_and_u_are_close_to_duckdb(trained: dict[str, Any]) -> None:
    duck, spark = _levels(trained["duck"][0]), _levels(trained["spark"][0])
    m_diff = {
        (d["comparison"], d["label_for_charts"]): abs(d["m_probability"] - s["m_probability"])
        for d, s in zip(duck, spark, strict=True)
    }
    u_diff = {
        (d["comparison"], d["label_for_charts"], d["u_probability"]): abs(d["u_probability"] - s["u_probability"])
        / d["u_probability"]
        for d, s in zip(duck, spark, strict=True)
    }
    assert max(m_diff.values()) <= M_TOL, sorted(m_diff.items(), key=lambda kv: -kv[1])[:3]
    far = {k: v for k, v in u_diff.items() if v > U_REL_TOL and v * k[2] > U_ABS_TOL}
    assert far == {}, sorted(far.items(), key=lambda kv: -kv[1])[:5]
    prior_d = trained["duck"][0].model["probability_two_random_records_match"]
    prior_s = trained["spark"][0].model["probability_two_random_records_match"]
    assert prior_s == pytest.approx(prior_d, rel=0.05), (prior_s, prior_d)
    # comparisons whose rarest level has < 100 counts in the whole sample are counted in full by both
    # engines: identical u (most levels here)
    assert sum(v < 1e-12 for v in u_diff.values()) >= len(u_diff) // 2


def _scores(links: pa.Table, truth: pa.Table) -> list[float]:
    ev = evaluate_links(links, truth)
    return [ev.auto.precision, ev.auto.recall, ev.auto_review.precision, ev.auto_review.recall]


def test_spark_model_links_as_well_as_duckdb_model(trained: dict[str, Any]) -> None:
    truth = trained["truth"]
    duck_scores = _scores(trained["duck"][1], truth)
    # the Spark-trained model, linked on Spark and (its artefact) on DuckDB
    spark_scores = _scores(trained["spark"][1], truth)
    on_duck, _ = link_file(trained["master"], trained["records"], artefact=trained["spark"][0], source="dtks")
    reused_scores = _scores(on_duck, truth)
    assert min(duck_scores) >= 0.9  # a usable model to compare with
    for ours in (spark_scores, reused_scores):
        assert ours == pytest.approx(duck_scores, abs=SCORE_TOL)


def test_train_cli_engine_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import linkage.model.spark as spark_module
    from services.cli import _register, app

    _register()
    runner = CliRunner()
    world = tmp_path / "w"
    generate_world(world, persons=50, seed=1)
    args = ["train", "--source", "dtks", "--world", str(world), "--out", str(tmp_path / "m"), "--no-charts"]
    bad = runner.invoke(app, [*args, "--engine", "sqlite"])
    assert bad.exit_code == 2 and "expected duckdb or spark" in bad.output

    def no_java(master: str = "local[2]") -> Any:
        raise spark_module.SparkUnavailableError("--engine spark could not start Spark; it needs Java 17")

    monkeypatch.setattr(spark_module, "spark_db_api", no_java)
    result = runner.invoke(app, [*args, "--engine", "spark"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["error: --engine spark could not start Spark; it needs Java 17"]
    assert not (tmp_path / "m").exists()
