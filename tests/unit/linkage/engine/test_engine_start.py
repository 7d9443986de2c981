"""Starting the engine: from a model artefact, the prepared-master cache, forked workers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_helpers import make_master, make_queries, members_model

from linkage.engine import BandThresholds, EngineError, LinkageEngine
from linkage.engine.cache import load_master_cached
from linkage.engine.parallel import EngineWorkers, prepare_in_parallel
from linkage.normalise.prepare import prepare_table

MASTER = make_master(2_000, seed=21)


def _artefact(folder: Path, thresholds: dict[str, float] | None = None) -> Path:
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(members_model()), encoding="utf-8")
    meta = {"source": "members", "thresholds": thresholds or {"auto_link": 0.95, "review": 0.4}}
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_engine_from_artefact_reads_thresholds(tmp_path: Path) -> None:
    engine = LinkageEngine.from_artefact(_artefact(tmp_path / "m"), preparer=prepare_table)
    assert engine.thresholds == BandThresholds(auto_link=0.95, review=0.4)
    assert engine.parameters.blocking_rules[0] == (("nik", "nik"),)
    with pytest.raises(EngineError, match="metadata"):
        LinkageEngine.from_artefact(tmp_path / "missing")


def test_prepared_cache_is_written_once_then_reused(tmp_path: Path) -> None:
    source = tmp_path / "master.parquet"
    pq.write_table(pa.Table.from_pylist(MASTER), source)
    first = LinkageEngine.from_artefact(_artefact(tmp_path / "m"), preparer=prepare_table)
    assert load_master_cached(first, source, cache_dir=tmp_path / "cache", version="v1") is False
    second = LinkageEngine.from_artefact(tmp_path / "m", preparer=prepare_table)
    assert load_master_cached(second, source, cache_dir=tmp_path / "cache", version="v1") is True
    assert len(list((tmp_path / "cache").iterdir())) == 1
    queries = make_queries(MASTER, 200, seed=3)
    assert first.link(queries) == second.link(queries)
    # a new normaliser version never reuses the old file
    third = LinkageEngine.from_artefact(tmp_path / "m", preparer=prepare_table)
    assert load_master_cached(third, source, cache_dir=tmp_path / "cache", version="v2") is False


def test_parallel_preparation_equals_serial() -> None:
    table = pa.Table.from_pylist(MASTER)
    assert prepare_in_parallel(prepare_table, table, processes=2, chunk_rows=300).equals(prepare_table(table))


def test_forked_workers_give_the_same_decisions_as_one_process() -> None:
    engine = LinkageEngine.from_model_json(members_model(), BandThresholds(0.99, 0.5), preparer=prepare_table)
    engine.master.load(pa.Table.from_pylist(MASTER))
    queries = pa.Table.from_pylist(make_queries(MASTER, 600, seed=4)[:600])
    batches = [queries.slice(start, 100) for start in range(0, 600, 100)]
    with EngineWorkers(engine, processes=2) as workers:
        forked = workers.link_batches(batches)
    assert forked == [engine.link(b) for b in batches]
    assert sum(len(d) for d in forked) == 600
