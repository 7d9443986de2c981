"""Publisher and broker board: notifications per ministry, publisher lag, batch time, Kafka broker health."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from monitoring.dashboards.panels import series, single


def publisher_dashboard() -> Dashboard:
    """What ministries receive and how far behind it is, and whether the broker underneath is healthy."""
    return (
        Dashboard("REGSOSEK publisher and broker")
        .uid("regsosek-publisher")
        .tags(["regsosek", "publisher"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_row(Row("Health"))
        .with_panel(single("Publisher up", "short", 'sum(up{job="publisher"})'))
        .with_panel(
            single(
                "Publisher lag (records)",
                "short",
                "sum(regsosek_publisher_consumer_lag_messages)",
                description="Linkage records not yet notified (alert PublisherLagGrowing).",
            )
        )
        .with_panel(single("Broker up", "short", 'sum(up{job="kafka"})'))
        .with_panel(
            single(
                "Offline partitions",
                "short",
                "max(kafka_controller_offline_partitions)",
                description="Partitions without a leader (alert KafkaOfflinePartitions).",
            )
        )
        .with_row(Row("Publisher"))
        .with_panel(
            series(
                "Notifications per second by subscriber",
                "ops",
                ("sum by (subscriber) (rate(regsosek_publisher_notifications_total[5m]))", "{{subscriber}}"),
            )
        )
        .with_panel(
            series(
                "Linkage records read per second by outcome",
                "ops",
                ("sum by (outcome) (rate(regsosek_publisher_records_total[5m]))", "{{outcome}}"),
            )
        )
        .with_panel(
            series(
                "Publisher lag per partition",
                "short",
                ("sum by (topic, partition) (regsosek_publisher_consumer_lag_messages)", "{{topic}}[{{partition}}]"),
            )
        )
        .with_panel(
            series(
                "Batch duration (poll to offset commit)",
                "s",
                *[
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(regsosek_publisher_batch_seconds_bucket[5m])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95, 0.99)
                ],
            )
        )
        .with_row(Row("Kafka broker (JMX exporter)"))
        .with_panel(
            series(
                "Broker bytes in and out per second",
                "Bps",
                ("sum(rate(kafka_server_bytes_in_total[5m]))", "in"),
                ("sum(rate(kafka_server_bytes_out_total[5m]))", "out"),
            )
        )
        .with_panel(
            series(
                "Records written per second",
                "ops",
                ("sum(rate(kafka_server_messages_in_total[5m]))", "records"),
            )
        )
        .with_panel(
            series(
                "Partitions: hosted, under-replicated, offline",
                "short",
                ("sum(kafka_server_partitions)", "hosted"),
                ("sum(kafka_server_under_replicated_partitions)", "under-replicated"),
                ("max(kafka_controller_offline_partitions)", "offline"),
            )
        )
        .with_panel(
            series(
                "Active controllers",
                "short",
                ("sum(kafka_controller_active_controllers)", "active"),
                description="Exactly 1 in a healthy cluster.",
            )
        )
    )
