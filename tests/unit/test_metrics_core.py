"""The core engine reports through the observer protocol; the service wrapper does not count twice."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from linkage.engine import BandThresholds, LinkageEngine
from linkage.normalise.prepare import prepare_table
from linkage.observer import NO_OBSERVER, RecordingObserver
from services.linker.port import MemberLink, MemberQuery
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import ObservedMemberLinker, PrometheusLinkageObserver


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


class EngineBackedLinker:
    """A port implementation that runs the core engine (like the linker's EngineMemberLinker)."""

    def __init__(self, engine: LinkageEngine) -> None:
        self.engine = engine
        self.model_version = "engine-test"

    def attach_observer(self, observer: Any) -> None:
        self.engine.observe(observer)

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        rows = [{"record_id": q.record_id, "nik": q.nik, "full_name": q.full_name} for q in members]
        out = []
        for d in self.engine.link(rows):
            band: Any = d.band.value
            out.append(MemberLink(d.record_id, band, d.master_record_id, d.match_probability, d.match_weight, None))
        return out


def test_observed_engine_linker_counts_each_decision_once(
    engine_and_master: tuple[LinkageEngine, list[dict[str, Any]]],
) -> None:
    engine, master = engine_and_master
    registry = CollectorRegistry()
    metrics = LinkerMetrics(registry)
    observed = ObservedMemberLinker(EngineBackedLinker(engine), PrometheusLinkageObserver(metrics), metrics=metrics)
    try:
        assert observed.core_reports
        person = master[11]
        query = MemberQuery(
            record_id="3603010001000100001001-01", nik=person["nik"], kk_number="", full_name=person["full_name"],
            sex="", birth_date="", birth_year=None, age=None, reference_year=2022, village_code="",
            bps_village_code="3603010001", address="", family_key="3603010001000100001001", head_name="",
        )  # fmt: skip
        observed.link([query])
    finally:
        engine.observe(NO_OBSERVER)
    total = sum(
        registry.get_sample_value("linkage_decisions_total", {"source": "dukcapil", "band": band}) or 0
        for band in ("auto_link", "review", "no_match")
    )
    assert total == 1
    assert registry.get_sample_value("linkage_engine_call_seconds_count") == 1
    assert registry.get_sample_value("linkage_candidate_pairs_count") == 1
    assert (registry.get_sample_value("linkage_candidate_pairs_sum") or 0) >= 1
