"""The linker's metrics: definitions, the observed engine object, region progress, the batch recorder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from contracts.dead_letter import DeadLetterReason
from contracts.decode import decode_family_submission
from contracts.submission import FamilySubmission
from integration.ids import PersonIds
from integration.port import MemberQuery
from linkage.observer import NO_OBSERVER, LinkageObserver, RecordingObserver
from services.linker.kafka_sensor import KafkaClientSensor
from services.linker.metrics_wiring import instrument_linker
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.observability.linker_metrics import LinkerMetrics
from services.observability.observer import PrometheusLinkageObserver
from services.observability.recorder import BatchRecorder
from services.observability.region import UNKNOWN_DISTRICT, DistrictTarget, RegionProgress, targets_from_world
from services.observability.region_store import RegionStore
from tests.support.linker import FakeMasterPerson, FakeMemberLinker, member_payload, nik_for, submission_payload
from tests.support.linking import link_batch

FAM_A = "3603010001000100001001"  # BPS district 3603010
FAM_B = "3603020003000200001001"  # BPS district 3603020
BPS = {"3603010": "360312", "3603020": "360313"}
TARGETS = {"360312": DistrictTarget(families=10, members=40), "360313": DistrictTarget(families=5, members=12)}


def query(family_key: str, serial: int, nik: str, name: str) -> MemberQuery:
    return MemberQuery(
        record_id=f"{family_key}-{serial:02d}",
        nik=nik,
        kk_number=None,
        full_name=name,
        sex="M",
        birth_date=None,
        birth_year=None,
        age=None,
        reference_year=2022,
        village_code=None,
        address=None,
        family_key=family_key,
        head_name=name,
    )


def fake_linker() -> FakeMemberLinker:
    return FakeMemberLinker.of(
        [
            FakeMasterPerson(nik_for(1), "Ahmad Fauzi", "3603121705150003", dtks_id="D1", bpjs_id="B1"),
            FakeMasterPerson(nik_for(2, female=True), "Siti Aminah", "3603121705150003"),
            FakeMasterPerson(nik_for(3), "Joko Susilo", "3603121705150021"),
        ]
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    got = registry.get_sample_value(name, labels)
    assert got is not None, f"no sample {name}{labels}"
    return got


def test_every_enum_label_starts_at_zero() -> None:
    registry = CollectorRegistry()
    LinkerMetrics(registry, consumed_topics=["subs"], produced_topics=["members", "dlq"], model_version="m-7")
    for reason in DeadLetterReason:
        assert value(registry, "regsosek_dead_letters_total", reason=reason.value) == 0
    for source in ("dukcapil", "dtks", "bpjs"):
        for band in ("auto_link", "review", "no_match"):
            assert value(registry, "linkage_decisions_total", source=source, band=band) == 0
    assert value(registry, "regsosek_messages_consumed_total", topic="subs") == 0
    assert value(registry, "regsosek_messages_produced_total", topic="dlq") == 0
    assert value(registry, "linkage_model_info", model_version="m-7") == 1
    builds = [s for f in registry.collect() if f.name == "regsosek_build_info" for s in f.samples]
    assert [(s.labels["service"], s.value) for s in builds] == [("linker", 1.0)]


def test_registries_are_independent() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    LinkerMetrics(first).decisions.labels(source="dtks", band="review").inc(3)
    LinkerMetrics(second)
    assert value(first, "linkage_decisions_total", source="dtks", band="review") == 3
    assert value(second, "linkage_decisions_total", source="dtks", band="review") == 0


def test_the_engine_object_reports_every_call_and_decision_once_instrumented() -> None:
    engine = fake_linker()
    inst = instrument_linker(engine, consumed_topics=["s"], produced_topics=["m"], dlq_topic="d")
    registry = inst.registry
    queries = [
        query(FAM_A, 1, nik_for(1), "Ahmad Fauzi"),  # auto_link, DTKS and BPJS hits
        query(FAM_A, 2, nik_for(2, female=True), "Sity Aminah"),  # review
        query(FAM_A, 3, "", "Rizky"),  # no NIK: no_match
        query(FAM_B, 1, nik_for(3), "Joko Susilo"),  # auto_link
    ]
    links = engine.link(queries)  # the object itself, as the pipeline and the master updates call it
    assert [link.band for link in links] == ["auto_link", "review", "no_match", "auto_link"]
    assert value(registry, "linkage_decisions_total", source="dukcapil", band="auto_link") == 2
    assert value(registry, "linkage_decisions_total", source="dukcapil", band="review") == 1
    assert value(registry, "linkage_decisions_total", source="dukcapil", band="no_match") == 1
    assert value(registry, "linkage_decisions_total", source="dtks", band="auto_link") == 1
    assert value(registry, "linkage_decisions_total", source="bpjs", band="no_match") == 3
    # Probabilities of the three members with a candidate: 0.999, 0.6, 0.999.
    assert value(registry, "linkage_match_probability_count") == 3
    assert value(registry, "linkage_match_probability_bucket", le="0.7") == 1
    assert value(registry, "linkage_engine_batch_size_members_sum") == 4
    assert value(registry, "linkage_engine_call_seconds_count") == 1
    engine.link(queries[:1])  # a second call (e.g. a re-link by a master change) counts again
    assert value(registry, "linkage_engine_call_seconds_count") == 2
    assert value(registry, "linkage_decisions_total", source="dtks", band="auto_link") == 2


def _submission(family_key: str, revision: int, members: list[dict[str, object]]) -> FamilySubmission:
    doc = submission_payload(members, family_key=family_key, revision=revision)
    return decode_family_submission(json.dumps(doc).encode(), key=family_key.encode())


def test_region_progress_and_members_without_nik_come_from_current_revisions() -> None:
    registry = CollectorRegistry()
    metrics = LinkerMetrics(registry)
    region = RegionProgress(registry, TARGETS, BPS)
    recorder = BatchRecorder(metrics, dlq_topic="dlq", region=region)
    store = LinkStore(":memory:")
    pipeline = SubmissionLinker(fake_linker(), PersonIds(b"k"), OutputTopics("m", "f", "r"))
    family_a = [
        member_payload(1, "Ahmad Fauzi", nik_for(1)),  # auto_link
        member_payload(2, "Sity Aminah", nik_for(2, female=True), sex=2, relationship=2),  # review
        member_payload(3, "Rizky", None, relationship=3),  # no NIK: no_match
    ]
    batch = [_submission(FAM_A, 2, family_a), _submission(FAM_B, 1, [member_payload(1, "Joko Susilo", nik_for(3))])]
    result = link_batch(pipeline, store, batch)
    store.apply(result.update)
    recorder.batch_done([], result.records, 0.1, result)
    assert value(registry, "linkage_members_without_nik_total") == 1
    assert value(registry, "linkage_review_backlog_members") == 1
    assert value(registry, "regsosek_region_families_submitted", district="360312") == 1
    assert value(registry, "regsosek_region_members_submitted", district="360312") == 3
    assert value(registry, "regsosek_region_members_linked", district="360312") == 1
    assert value(registry, "regsosek_region_members_review", district="360312") == 1
    assert value(registry, "regsosek_region_members_linked", district="360313") == 1
    assert value(registry, "regsosek_region_families_expected", district="360313") == 5
    # A late, older revision of family A (one member without NIK) is stale: no gauge or counter moves.
    late = link_batch(pipeline, store, [_submission(FAM_A, 1, [member_payload(1, "Rizky", None)])])
    assert late.stale == 1
    recorder.batch_done([], late.records, 0.1, late)
    assert value(registry, "linkage_members_without_nik_total") == 1
    assert value(registry, "regsosek_region_members_submitted", district="360312") == 3
    assert value(registry, "linkage_review_backlog_members") == 1


def test_a_new_revision_replaces_the_family_counts() -> None:
    registry = CollectorRegistry()
    region = RegionProgress(registry, TARGETS, BPS)
    region.family_linked(FAM_A, ["auto_link", "review", "no_match"])
    region.family_linked(FAM_A, ["auto_link"])  # revision 2 dropped two members
    region.family_linked("9999999001000100001001", ["auto_link"])  # district not in the master
    assert value(registry, "regsosek_region_families_submitted", district="360312") == 1
    assert value(registry, "regsosek_region_members_submitted", district="360312") == 1
    assert value(registry, "regsosek_region_members_review", district="360312") == 0
    assert value(registry, "regsosek_region_members_linked", district=UNKNOWN_DISTRICT) == 1
    assert value(registry, "regsosek_region_members_submitted", district="360313") == 0
    assert region.review_backlog() == 0


def test_region_progress_survives_a_restart(tmp_path: Path) -> None:
    first = RegionProgress(CollectorRegistry(), TARGETS, BPS, RegionStore(tmp_path / "region.sqlite"))
    first.families_linked({FAM_A: ["auto_link", "review", "no_match"], FAM_B: ["auto_link"]})
    first.family_linked(FAM_A, ["auto_link", "auto_link"])  # revision 2 replaces revision 1
    first.families_linked({FAM_B: ["auto_link"]})  # a re-delivered batch: same counts again
    registry = CollectorRegistry()
    restarted = RegionProgress(registry, TARGETS, BPS, RegionStore(tmp_path / "region.sqlite"))
    assert value(registry, "regsosek_region_families_submitted", district="360312") == 1
    assert value(registry, "regsosek_region_members_submitted", district="360312") == 2
    assert value(registry, "regsosek_region_members_linked", district="360312") == 2
    assert value(registry, "regsosek_region_members_review", district="360312") == 0
    assert value(registry, "regsosek_region_families_submitted", district="360313") == 1
    assert restarted.review_backlog() == 0
    restarted.family_linked(FAM_B, ["review", "review", "review"])
    assert restarted.review_backlog() == 3
    assert value(registry, "regsosek_region_members_submitted", district="360313") == 3


def test_targets_come_from_living_residents_of_the_master(tmp_path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "kk_number": ["K1", "K1", "K2", "K3", "K4"],
                "district_code": ["360312", "360312", "360312", "360313", "360313"],
                "status": ["alive", "alive", "alive", "dead", "alive"],
                "moved_out": [False, False, False, False, True],
            }
        ),
        tmp_path / "population.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "level": ["district", "village"],
                "bps_code": ["3603010", "3603010001"],
                "kemendagri_code": ["360312", "3603122001"],
                "name": ["Cisoka", "Cisoka"],
            }
        ),
        tmp_path / "crosswalk.parquet",
    )
    targets, bps = targets_from_world(tmp_path)
    assert targets == {"360312": DistrictTarget(families=2, members=3)}
    assert bps == {"3603010": "360312"}
    inst = instrument_linker(
        fake_linker(), consumed_topics=["s"], produced_topics=["m"], dlq_topic="d", world_dir=tmp_path
    )
    assert value(inst.registry, "linkage_master_records") == 5  # every row the engine loads
    assert value(inst.registry, "linkage_master_as_of_timestamp_seconds") > 1.6e9
    assert value(inst.registry, "regsosek_region_members_expected", district="360312") == 3
    store = tmp_path / "state" / "region.sqlite"
    RegionStore(store).save([("3603010001000100001001", 4, 2, 2)])  # counted before a restart
    again = instrument_linker(
        fake_linker(),
        consumed_topics=["s"],
        produced_topics=["m"],
        dlq_topic="d",
        world_dir=tmp_path,
        region_store=store,
    )
    assert value(again.registry, "linkage_review_backlog_members") == 2
    assert value(again.registry, "regsosek_region_members_submitted", district="360312") == 4


@dataclass
class Msg:
    topic: str
    partition: int
    offset: int
    timestamp: float


@dataclass
class Event:
    message: Msg


@dataclass
class Out:
    topic: str
    value: bytes | None


def test_batch_recorder_counts_topics_dead_letters_age_and_lag() -> None:
    registry = CollectorRegistry()
    recorder = BatchRecorder(LinkerMetrics(registry), dlq_topic="dlq", clock=lambda: 1000.0)
    recorder.bind_highwater(lambda topic, partition: {0: 10, 1: 4}[partition])
    events = [Event(Msg("subs", 0, 5, 999.5)), Event(Msg("subs", 1, 3, 990.0)), Event(Msg("subs", 0, 6, 999.9))]
    dead = json.dumps({"reason": "invalid_nik", "detail": "x"}).encode()
    outputs = [Out("members", b"{}"), Out("members", None), Out("families", b"{}"), Out("dlq", dead)]
    recorder.batch_done(events, outputs, seconds=0.2)
    assert value(registry, "regsosek_messages_consumed_total", topic="subs") == 3
    assert value(registry, "regsosek_messages_produced_total", topic="members") == 2
    assert value(registry, "regsosek_dead_letters_total", reason="invalid_nik") == 1
    assert value(registry, "regsosek_event_age_seconds_count") == 3
    assert value(registry, "regsosek_event_age_seconds_sum") == pytest.approx(0.5 + 10.0 + 0.1)
    assert value(registry, "regsosek_event_age_seconds_bucket", le="1.0") == 2
    assert value(registry, "regsosek_batch_size_records_sum") == 3
    assert value(registry, "regsosek_batch_processing_seconds_sum") == pytest.approx(0.2)
    assert value(registry, "regsosek_last_processed_timestamp_seconds") == 1000.0
    assert value(registry, "regsosek_consumer_lag_messages", topic="subs", partition="0") == 3  # 10 - 7
    assert value(registry, "regsosek_consumer_lag_messages", topic="subs", partition="1") == 0  # 4 - 4


def test_prometheus_observer_implements_the_core_protocol() -> None:
    registry = CollectorRegistry()
    observer: LinkageObserver = PrometheusLinkageObserver(LinkerMetrics(registry))  # mypy checks the protocol
    observer.master_loaded(1200, 1_700_000_000.0)
    observer.record_decided("dukcapil", "review", 0.55, 14)
    observer.record_decided("bpjs", "auto_link", None, None)
    observer.batch_linked(3, 0.02)
    assert value(registry, "linkage_master_records") == 1200
    assert value(registry, "linkage_master_as_of_timestamp_seconds") == 1_700_000_000.0
    assert value(registry, "linkage_candidate_pairs_sum") == 14
    assert value(registry, "linkage_match_probability_bucket", le="0.5") == 0
    assert value(registry, "linkage_match_probability_bucket", le="0.6") == 1
    assert value(registry, "linkage_decisions_total", source="bpjs", band="auto_link") == 1
    assert value(registry, "linkage_engine_batch_size_members_sum") == 3


def test_core_observers_record_and_ignore() -> None:
    recording = RecordingObserver()
    recording.master_loaded(5, 1.0)
    recording.record_decided("dukcapil", "review", 0.5, 7)
    recording.batch_linked(3, 0.25)
    NO_OBSERVER.record_decided("dtks", "auto_link", None, None)
    assert recording.calls == [
        ("master_loaded", (5, 1.0)),
        ("record_decided", ("dukcapil", "review", 0.5, 7)),
        ("batch_linked", (3, 0.25)),
    ]


def test_kafka_client_sensor_counts_commits_rebalances_and_owned_partitions() -> None:
    registry = CollectorRegistry()
    metrics = LinkerMetrics(registry)
    owned: set[int] = {0, 2}
    sensor = KafkaClientSensor(metrics, lambda: owned)
    for _ in range(3):
        sensor.on_commit_completed(object(), sensor.on_commit_initiated(object()))
    state = sensor.on_rebalance_start(object())
    sensor.on_rebalance_end(object(), state)
    owned = {1, 2, 3}
    sensor.on_rebalance_end(object(), sensor.on_rebalance_start(object()))

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name)

    assert sample("regsosek_linker_offset_commits_total") == 3
    assert sample("regsosek_linker_offset_commit_seconds_count") == 3
    assert sample("regsosek_linker_rebalances_total") == 2
    assert sample("regsosek_linker_rebalance_seconds_count") == 2
    assert sample("regsosek_linker_assigned_partitions") == 3


def test_kafka_client_sensor_survives_an_unreadable_assignment() -> None:
    registry = CollectorRegistry()
    metrics = LinkerMetrics(registry)

    def owned() -> set[int]:
        raise RuntimeError("consumer not started")

    sensor = KafkaClientSensor(metrics, owned)
    sensor.on_rebalance_end(object(), sensor.on_rebalance_start(object()))
    assert registry.get_sample_value("regsosek_linker_rebalances_total") == 1
    assert registry.get_sample_value("regsosek_linker_assigned_partitions") == 0


class ShardedFakeLinker(FakeMemberLinker):
    """The fake engine with the sharded engine's figures (as `EngineMemberLinker.shard_stats`)."""

    figures: dict[str, float] | None = None
    broken = False

    def shard_stats(self) -> dict[str, float] | None:
        if self.broken:
            raise RuntimeError("the engine is being rebuilt")
        return self.figures


def test_master_shard_figures_are_read_from_the_engine_at_each_scrape() -> None:
    unsharded = instrument_linker(fake_linker(), consumed_topics=["s"], produced_topics=["m"], dlq_topic="d")
    assert value(unsharded.registry, "linkage_shard_master_rows") == 0  # exported, at 0, without sharding
    assert value(unsharded.registry, "linkage_shard_rows_fetched_total") == 0
    engine = ShardedFakeLinker({})
    registry = instrument_linker(engine, consumed_topics=["s"], produced_topics=["m"], dlq_topic="d").registry
    assert value(registry, "linkage_shard_master_rows") == 0  # the engine has no shard (None)
    engine.figures = {
        "rows_held": 174_297,
        "districts": 5,
        "lookups": 21,
        "rows_fetched": 64,
        "fetched_rows_dropped": 40,
        "districts_on_demand": 1,
        "rows_dropped": 1_000,
        "lookup_seconds": 0.08,
        "fetch_seconds": 0.05,
    }
    assert value(registry, "linkage_shard_master_rows") == 174_297
    assert value(registry, "linkage_shard_districts") == 5
    assert value(registry, "linkage_shard_index_lookups_total") == 21
    assert value(registry, "linkage_shard_rows_fetched_total") == 64
    assert value(registry, "linkage_shard_fetched_rows_dropped_total") == 40
    assert value(registry, "linkage_shard_districts_on_demand_total") == 1
    assert value(registry, "linkage_shard_rows_dropped_total") == 1_000
    assert value(registry, "linkage_shard_index_lookup_seconds_total") == 0.08
    assert value(registry, "linkage_shard_fetch_seconds_total") == 0.05
    engine.figures["rows_fetched"] = 70  # the next scrape sees the engine's current figures
    assert value(registry, "linkage_shard_rows_fetched_total") == 70
    engine.broken = True  # a failing read gives zeros, never a failed scrape
    assert value(registry, "linkage_shard_master_rows") == 0
