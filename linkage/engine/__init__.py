"""Real-time linkage engine: scores records against a prepared in-memory master with a trained
Splink model's exact weights (see `LinkageEngine`).

Typical use (a service start-up, then one call per batch):

    engine = LinkageEngine.from_artefact(model_folder, preparer=prepare_table)
    load_master_cached(engine, world / "population.parquet", cache_dir=..., version="spec-1",
                       convert=population_records)          # linkage.engine.cache
    decisions = engine.link(batch)                           # list[LinkDecision], one per record
    engine.master.upsert(record); engine.master.remove(nik)  # master updates, no rebuild
    decisions, keys = engine.link_with_keys(batch)           # + blocking-key hashes per record
    engine.master_keys(record)                               # a master record's hashes (shared iff paired)
    with EngineWorkers(engine, processes=2) as workers:      # both cores, forked after the load
        results = workers.link_batches(batches)
"""

from linkage.engine.decisions import Band, BandThresholds, ComparisonContribution, Explanation, LinkDecision
from linkage.engine.engine import LinkageEngine, ScoredPairs
from linkage.engine.errors import EngineError, MasterNotLoadedError, UnsupportedModelError
from linkage.engine.keys import BlockingKeys, KeyHashes
from linkage.engine.parallel import EngineWorkers
from linkage.engine.params import ModelParameters, read_model_parameters

__all__ = [
    "Band",
    "BandThresholds",
    "BlockingKeys",
    "ComparisonContribution",
    "EngineError",
    "EngineWorkers",
    "Explanation",
    "KeyHashes",
    "LinkDecision",
    "LinkageEngine",
    "MasterNotLoadedError",
    "ModelParameters",
    "ScoredPairs",
    "UnsupportedModelError",
    "read_model_parameters",
]
