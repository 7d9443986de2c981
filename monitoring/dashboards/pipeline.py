"""Pipeline overview: throughput, end-to-end latency, consumer lag, dead letters, decision bands."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from monitoring.dashboards.panels import series, single

SUBMIT = 'route="/v1/submissions"'


def _quantiles(metric: str) -> list[tuple[str, str]]:
    return [
        (f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket[5m])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


def pipeline_dashboard() -> Dashboard:
    """The operator's first board: is data flowing, how fast, how far behind, what is rejected."""
    return (
        Dashboard("REGSOSEK pipeline overview")
        .uid("regsosek-pipeline")
        .tags(["regsosek", "pipeline"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_row(Row("Health"))
        .with_panel(single("Linker instances up", "short", 'sum(up{job="linker"})'))
        .with_panel(single("Gateway instances up", "short", 'sum(up{job="gateway"})'))
        .with_panel(
            single(
                "Seconds since the last batch",
                "s",
                "time() - max(regsosek_last_processed_timestamp_seconds)",
                description="Grows while the linker is stalled; alert LinkingStalled fires when lag is waiting too.",
            )
        )
        .with_panel(single("Consumer lag (records)", "short", "sum(regsosek_consumer_lag_messages)"))
        .with_row(Row("Throughput"))
        .with_panel(
            series(
                "Gateway answers per second",
                "reqps",
                (f"sum by (code) (rate(regsosek_gateway_requests_total{{{SUBMIT}}}[5m]))", "{{code}}"),
            )
        )
        .with_panel(
            series(
                "Records consumed and produced per second",
                "ops",
                ("sum by (topic) (rate(regsosek_messages_consumed_total[5m]))", "in {{topic}}"),
                ("sum by (topic) (rate(regsosek_messages_produced_total[5m]))", "out {{topic}}"),
            )
        )
        .with_row(Row("Latency"))
        .with_panel(
            series(
                "End-to-end event age (Kafka timestamp to processed)",
                "s",
                *_quantiles("regsosek_event_age_seconds"),
            )
        )
        .with_panel(
            series(
                "Micro-batch duration",
                "s",
                *_quantiles("regsosek_batch_processing_seconds"),
            )
        )
        .with_panel(
            series(
                "Gateway request duration",
                "s",
                *_quantiles("regsosek_gateway_request_duration_seconds"),
            )
        )
        .with_panel(
            series(
                "Records per micro-batch",
                "short",
                (
                    "sum(rate(regsosek_batch_size_records_sum[5m])) / sum(rate(regsosek_batch_size_records_count[5m]))",
                    "mean",
                ),
            )
        )
        .with_row(Row("Consumer group"))
        .with_panel(
            series(
                "Partitions owned per linker instance",
                "short",
                ("sum by (instance) (regsosek_linker_assigned_partitions)", "{{instance}}"),
                description="After each rebalance; the sum over instances is the submissions topic's partitions.",
            )
        )
        .with_panel(
            series(
                "Rebalances per hour",
                "short",
                ("sum by (instance) (increase(regsosek_linker_rebalances_total[1h]))", "{{instance}}"),
                description="Each one pauses consumption; frequent ones mean instances leave or time out.",
            )
        )
        .with_panel(series("Offset commit duration", "s", *_quantiles("regsosek_linker_offset_commit_seconds")))
        .with_panel(
            series(
                "Link-state changelog records restored per hour",
                "short",
                (
                    "sum by (instance, by) (increase(regsosek_linker_changelog_restored_records_total[1h]))",
                    "{{instance}} {{by}}",
                ),
                description="owner: read when a partition's file is opened (a takeover); standby: read by "
                "standby replicas of partitions the instance does not own. With standby replicas, a takeover "
                "reads only the tail.",
            )
        )
        .with_panel(
            series(
                "Link-state changelog fences per hour",
                "short",
                ("sum by (instance) (increase(regsosek_linker_changelog_fenced_total[1h]))", "{{instance}}"),
                description="Changelog writes refused because another instance had taken the partition over "
                "(a new producer epoch): this instance overran the rebalance timeout. The batch is left to the "
                "new owner, nothing is lost; 0 in normal hand-overs.",
            )
        )
        .with_panel(
            series(
                "Submissions re-read after a skip, per hour",
                "short",
                ("sum by (instance) (increase(regsosek_linker_skipped_records_reread_total[1h]))", "{{instance}}"),
                description="Records faust skipped on their way to the linker around a rebalance, found as a gap "
                "in a partition's offsets and read again (docs/linker.md, Offsets). Their commit waited for "
                "them: nothing is lost. Occasional after rebalances; steady growth means a consumer problem.",
            )
        )
        .with_row(Row("Master shard (REGSOSEK_LINKER_MASTER_SHARDING)"))
        .with_panel(
            series(
                "Master rows held per instance",
                "short",
                ("sum by (instance) (linkage_shard_master_rows)", "{{instance}}"),
                description="Its districts' rows plus rows fetched through the global index; falls when a "
                "rebalance takes partitions away (their districts are dropped). 0 without master sharding.",
            )
        )
        .with_panel(
            series(
                "Rows fetched through the global index per second",
                "ops",
                ("sum by (instance) (rate(linkage_shard_rows_fetched_total[5m]))", "{{instance}}"),
                ("sum by (instance) (rate(linkage_shard_fetched_rows_dropped_total[5m]))", "{{instance}} dropped"),
                description="People linked outside their master district (movers, wrong regions), and the "
                "fetched rows dropped when they passed REGSOSEK_LINKER_MASTER_SHARD_FETCHED_ROWS_MAX (each "
                "drop rebuilds the engine from its districts: a few seconds).",
            )
        )
        .with_panel(
            series(
                "Global index lookup and fetch, seconds per engine call",
                "s",
                (
                    "sum(rate(linkage_shard_index_lookup_seconds_total[5m])) "
                    "/ sum(rate(linkage_shard_index_lookups_total[5m]))",
                    "lookup",
                ),
                (
                    "sum(rate(linkage_shard_fetch_seconds_total[5m])) "
                    "/ sum(rate(linkage_shard_index_lookups_total[5m]))",
                    "fetch",
                ),
            )
        )
        .with_row(Row("Lag, dead letters, decisions"))
        .with_panel(
            series(
                "Consumer lag per partition",
                "short",
                ("sum by (topic, partition) (regsosek_consumer_lag_messages)", "{{topic}}[{{partition}}]"),
            )
        )
        .with_panel(
            series(
                "Dead letters per second by reason",
                "ops",
                ("sum by (reason) (rate(regsosek_dead_letters_total[5m])) > 0", "{{reason}}"),
            )
        )
        .with_panel(
            series(
                "Dukcapil decisions per second by band",
                "ops",
                ('sum by (band) (rate(linkage_decisions_total{source="dukcapil"}[5m]))', "{{band}}"),
            )
        )
    )
