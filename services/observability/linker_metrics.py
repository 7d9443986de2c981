"""The linker's metric families, registered on an injected `CollectorRegistry`.

`LinkerMetrics` only defines and pre-initialises the families; who updates them is elsewhere:
`PrometheusLinkageObserver` (the engine's hooks), `BatchRecorder` (services/observability/recorder.py: the
linker's batches, consumer lag) and `RegionProgress` (coverage per district); the linker wires them in
services/linker/metrics_wiring.py. Label values are bounded enums: topics of the catalogue,
partition numbers, dead-letter reasons, bands, sources, district codes of the regency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts.dead_letter import DeadLetterReason
from linkage.observer import BANDS, SOURCES
from services.observability import buckets
from services.observability.info import register_build_info

#: The master shard's figures (REGSOSEK_LINKER_MASTER_SHARDING), read from the engine at each scrape:
#: name -> (type, help, the key of the snapshot `EngineMemberLinker.shard_stats` returns).
SHARD_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    (
        "linkage_shard_master_rows",
        "gauge",
        "Master rows this sharded instance's engine holds: its districts' rows and rows fetched through the "
        "global index (0 without master sharding).",
        "rows_held",
    ),
    ("linkage_shard_districts", "gauge", "Master districts this sharded instance's engine holds whole.", "districts"),
    (
        "linkage_shard_index_lookups",
        "counter",
        "Engine calls whose region-free blocking keys were looked up in the global index.",
        "lookups",
    ),
    (
        "linkage_shard_rows_fetched",
        "counter",
        "Master rows of districts not held, fetched through the global index and added to the engine.",
        "rows_fetched",
    ),
    (
        "linkage_shard_fetched_rows_dropped",
        "counter",
        "Fetched rows of other districts dropped when they passed REGSOSEK_LINKER_MASTER_SHARD_FETCHED_ROWS_MAX "
        "(the engine rebuilt from its districts; they are fetched again when needed).",
        "fetched_rows_dropped",
    ),
    (
        "linkage_shard_districts_on_demand",
        "counter",
        "Districts loaded because a record of a district not held arrived (a wrong region or routing).",
        "districts_on_demand",
    ),
    (
        "linkage_shard_rows_dropped",
        "counter",
        "Master rows dropped from the engine with the districts of revoked partitions.",
        "rows_dropped",
    ),
    (
        "linkage_shard_index_lookup_seconds",
        "counter",
        "Time spent hashing batches' region-free keys and searching the global index.",
        "lookup_seconds",
    ),
    (
        "linkage_shard_fetch_seconds",
        "counter",
        "Time spent taking the rows the global index found and adding them to the engine.",
        "fetch_seconds",
    ),
)


class ShardCollector(Collector):
    """The master shard's figures, read from `source` at each scrape (zeros until a source is bound or
    when it returns None: an instance without master sharding)."""

    def __init__(self) -> None:
        self.source: Callable[[], Mapping[str, float] | None] = lambda: None

    def collect(self) -> Iterator[Metric]:
        try:
            values = self.source() or {}
        except Exception:  # a scrape must never fail because the engine is being rebuilt
            values = {}
        for name, kind, documentation, key in SHARD_FAMILIES:
            value = float(values.get(key, 0.0))
            if kind == "counter":
                yield CounterMetricFamily(name, documentation, value=value)
            else:
                yield GaugeMetricFamily(name, documentation, value=value)


class LinkerMetrics:
    """Every metric family the linker exports; `topics` are pre-initialised for the per-topic counters."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        consumed_topics: Iterable[str] = (),
        produced_topics: Iterable[str] = (),
        model_version: str = "unknown",
    ) -> None:
        r = registry
        self.registry = registry
        self.build_info = register_build_info(r, "linker")
        self.model_info = Gauge(
            "linkage_model_info", "The linkage model the linker runs (always 1).", ["model_version"], registry=r
        )
        self.model_info.labels(model_version=model_version).set(1)
        self.messages_consumed = Counter(
            "regsosek_messages_consumed_total", "Kafka records read by the linker.", ["topic"], registry=r
        )
        self.messages_produced = Counter(
            "regsosek_messages_produced_total",
            "Kafka records the linker produced and the broker acknowledged (tombstones included).",
            ["topic"],
            registry=r,
        )
        self.decisions = Counter(
            "linkage_decisions_total",
            "Link decisions per source database and band (one per member per source).",
            ["source", "band"],
            registry=r,
        )
        self.dead_letters = Counter(
            "regsosek_dead_letters_total", "Records sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.event_age = Histogram(
            "regsosek_event_age_seconds",
            "Time from a record's Kafka timestamp to the end of its processing (end-to-end latency).",
            buckets=buckets.EVENT_AGE_SECONDS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "regsosek_batch_processing_seconds",
            "Duration of one micro-batch: classify, link, produce and wait for acknowledgements, store.",
            buckets=buckets.BATCH_SECONDS,
            registry=r,
        )
        self.batch_records = Histogram(
            "regsosek_batch_size_records", "Kafka records per micro-batch.", buckets=buckets.BATCH_SIZE, registry=r
        )
        self.engine_duration = Histogram(
            "linkage_engine_call_seconds", "Duration of one engine call.", buckets=buckets.BATCH_SECONDS, registry=r
        )
        self.engine_batch = Histogram(
            "linkage_engine_batch_size_members", "Members per engine call.", buckets=buckets.BATCH_SIZE, registry=r
        )
        self.candidate_pairs = Histogram(
            "linkage_candidate_pairs",
            "Candidate master records compared with one member after blocking.",
            buckets=buckets.CANDIDATE_PAIRS,
            registry=r,
        )
        self.match_probability = Histogram(
            "linkage_match_probability",
            "Match probability of the best Dukcapil candidate of each member that had one.",
            buckets=buckets.PROBABILITY,
            registry=r,
        )
        self.members_without_nik = Counter(
            "linkage_members_without_nik_total", "Linked members whose questionnaire had no NIK.", registry=r
        )
        self.consumer_lag = Gauge(
            "regsosek_consumer_lag_messages",
            "Records on the broker not yet processed by this linker, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.last_processed = Gauge(
            "regsosek_last_processed_timestamp_seconds",
            "Unix time at which the linker last finished a micro-batch (0 before the first).",
            registry=r,
        )
        self.master_records = Gauge(
            "linkage_master_records", "Persons in the population master the engine links against.", registry=r
        )
        self.master_as_of = Gauge(
            "linkage_master_as_of_timestamp_seconds",
            "Unix time the loaded population master is current as of (freshness = time() - this).",
            registry=r,
        )
        self.review_backlog = Gauge(
            "linkage_review_backlog_members",
            "Members of current family revisions waiting for clerical review.",
            registry=r,
        )
        # The Kafka client's side (faust's sensor hooks, services/linker/kafka_sensor.py).
        self.offset_commits = Counter(
            "regsosek_linker_offset_commits_total",
            "Offset commits of the linker's consumer that reached the group coordinator.",
            registry=r,
        )
        self.offset_commit_duration = Histogram(
            "regsosek_linker_offset_commit_seconds",
            "Duration of one offset commit of the linker's consumer.",
            buckets=buckets.BATCH_SECONDS,
            registry=r,
        )
        self.rebalances = Counter(
            "regsosek_linker_rebalances_total",
            "Consumer-group rebalances this linker instance took part in (completed ones).",
            registry=r,
        )
        self.rebalance_duration = Histogram(
            "regsosek_linker_rebalance_seconds",
            "Duration of one rebalance, from the revocation to the resumed consumption.",
            buckets=buckets.BATCH_SECONDS,
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "regsosek_linker_assigned_partitions",
            "Partitions of the submissions topic this instance owns after the last rebalance.",
            registry=r,
        )
        # The link-state changelog (services/linker/changelog.py): records read into link-store files,
        # by the owner opening a partition's file or by a standby replica tailing one it does not own.
        self.changelog_restored = Counter(
            "regsosek_linker_changelog_restored_records_total",
            "Link-state changelog records read into link-store files: by the owner on opening a partition's "
            "file, or by a standby replica of a partition this instance does not own.",
            ["by"],
            registry=r,
        )
        for by in ("owner", "standby"):
            self.changelog_restored.labels(by=by)
        # The fence (services/linker/changelog_kafka.py): another instance took a partition over while
        # this one still wrote its changelog; the batch is left to the new owner.
        self.changelog_fenced = Counter(
            "regsosek_linker_changelog_fenced_total",
            "Changelog writes fenced: another instance took the partition over (a new producer epoch) while "
            "this one still wrote; that part of the batch was not applied nor committed, the partition dropped.",
            registry=r,
        )
        # The strict-commit consumer (services/linker/strict_commit.py): records that never reached the
        # agent (faust skipped them around a rebalance), sought back to and read again.
        self.offsets_reread = Counter(
            "regsosek_linker_skipped_records_reread_total",
            "Submissions records faust skipped on their way to the linker's agent (seen as a gap in a "
            "partition's offsets), sought back to and read again; their commit waited for them.",
            registry=r,
        )
        self.shard = ShardCollector()
        r.register(self.shard)
        for topic in consumed_topics:
            self.messages_consumed.labels(topic=topic)
        for topic in produced_topics:
            self.messages_produced.labels(topic=topic)
        for source in SOURCES:
            for band in BANDS:
                self.decisions.labels(source=source, band=band)
        for reason in DeadLetterReason:
            self.dead_letters.labels(reason=reason.value)
