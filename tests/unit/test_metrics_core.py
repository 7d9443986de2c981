"""The core engine reports through the observer protocol; the service's engine object adds the sectoral
decisions, and each decision is counted once."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest

from integration.port import MemberQuery
from linkage.engine import BandThresholds, LinkageEngine
from linkage.normalise.prepare import prepare_table
from linkage.observer import NO_OBSERVER, RecordingObserver
from services.linker.engine_link import EngineMemberLinker, NikIndex
from services.linker.metrics_wiring import instrument_linker


def _helpers() -> ModuleType:
    # The engine tests' own factories (a synthetic master and a members model), loaded by path.
    path = Path(__file__).parent / "linkage" / "engine" / "engine_helpers.py"
    spec = importlib.util.spec_from_file_location("engine_helpers_for_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def engine_and_master() -> tuple[LinkageEngine, list[dict[str, Any]]]:
    helpers = _helpers()
    master = helpers.make_master(500, seed=3)
    engine = LinkageEngine.from_model_json(
        helpers.members_model(), BandThresholds(auto_link=0.99, review=0.5), preparer=prepare_table
    )
    engine.master.load(pa.Table.from_pylist(master))
    return engine, master


def test_engine_reports_each_call_and_decision(engine_and_master: tuple[LinkageEngine, list[dict[str, Any]]]) -> None:
    engine, master = engine_and_master
    recording = RecordingObserver()
    engine.observe(recording)
    try:
        queries = [{**master[7], "record_id": "Q1"}, {"record_id": "Q2"}]
        decisions = engine.link(queries)
    finally:
        engine.observe(NO_OBSERVER)
    assert [name for name, _ in recording.calls] == ["batch_linked", "record_decided", "record_decided"]
    records, seconds = recording.calls[0][1]
    assert records == 2 and isinstance(seconds, float) and seconds >= 0
    first, second = (args for _, args in recording.calls[1:])
    assert first == ("dukcapil", decisions[0].band.value, decisions[0].match_probability, decisions[0].candidate_count)
    assert first[1] == "auto_link" and isinstance(first[3], int) and first[3] >= 1
    assert second == ("dukcapil", "no_match", None, 0)


def test_the_instrumented_engine_linker_counts_each_decision_once(
    engine_and_master: tuple[LinkageEngine, list[dict[str, Any]]],
) -> None:
    engine, master = engine_and_master
    person = master[11]
    niks = pa.array([p["nik"] for p in master])
    linker = EngineMemberLinker(
        engine,
        "engine-test",
        NikIndex(niks, kk=pa.array([p["kk_number"] for p in master]), dead=pa.array([False] * len(master))),
        NikIndex(pa.array([person["nik"]]), id=pa.array(["DTKS-11"]), decile=pa.array([3])),
        None,
    )
    try:
        inst = instrument_linker(linker, consumed_topics=["s"], produced_topics=["m"], dlq_topic="d")
        query = MemberQuery(
            record_id="3603010001000100001001-01",
            nik=person["nik"],
            kk_number=None,
            full_name=person["full_name"],
            sex=None,
            birth_date=None,
            birth_year=None,
            age=None,
            reference_year=2022,
            village_code=None,
            address=None,
            family_key="3603010001000100001001",
            head_name="",
        )
        (link,) = linker.link([query])  # the engine object itself: no wrapper between it and its callers
    finally:
        engine.observe(NO_OBSERVER)
    registry = inst.registry
    assert (link.master_nik, link.dtks_id) == (person["nik"], "DTKS-11")  # the best candidate's DTKS row
    for source in ("dukcapil", "dtks", "bpjs"):
        counts = {
            band: registry.get_sample_value("linkage_decisions_total", {"source": source, "band": band})
            for band in ("auto_link", "review", "no_match")
        }
        assert sum(v or 0 for v in counts.values()) == 1, source
    assert registry.get_sample_value("linkage_decisions_total", {"source": "dtks", "band": "auto_link"}) == 1
    assert registry.get_sample_value("linkage_decisions_total", {"source": "bpjs", "band": "no_match"}) == 1
    assert registry.get_sample_value("linkage_engine_call_seconds_count") == 1
    assert registry.get_sample_value("linkage_candidate_pairs_count") == 1
    assert (registry.get_sample_value("linkage_candidate_pairs_sum") or 0) >= 1
