"""Linkage quality: match probabilities, review backlog, share without NIK, sectoral coverage, master."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from monitoring.dashboards.panels import grid, series, single

DUKCAPIL = 'linkage_decisions_total{source="dukcapil"}'


def _share(numerator: str, window: str = "1h") -> str:
    return f"sum(rate({numerator}[{window}])) / sum(rate({DUKCAPIL}[{window}]))"


def quality_dashboard() -> Dashboard:
    """Is the model still linking well: bands, probabilities, review work, data quality of the input."""
    return (
        Dashboard("REGSOSEK linkage quality")
        .uid("regsosek-linkage-quality")
        .tags(["regsosek", "linkage"])
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .with_row(Row("Now"))
        .with_panel(
            single(
                "Auto-link rate (1 h)",
                "percentunit",
                _share('linkage_decisions_total{source="dukcapil",band="auto_link"}'),
                decimals=1,
            )
        )
        .with_panel(single("Review backlog (members)", "short", "sum(linkage_review_backlog_members)"))
        .with_panel(
            single(
                "Members without NIK (1 h)",
                "percentunit",
                _share("linkage_members_without_nik_total"),
                decimals=1,
            )
        )
        .with_panel(
            single(
                "Master age",
                "s",
                "time() - max(linkage_master_as_of_timestamp_seconds)",
                description="How old the loaded Dukcapil master is; reload the linker after a master refresh.",
            )
        )
        .with_row(Row("Decisions"))
        .with_panel(
            series(
                "Dukcapil band shares (1 h)",
                "percentunit",
                (
                    f"sum by (band) (rate({DUKCAPIL}[1h])) / ignoring (band) group_left sum(rate({DUKCAPIL}[1h]))",
                    "{{band}}",
                ),
            )
        )
        .with_panel(
            series(
                "Sectoral coverage: members found in DTKS / BPJS (1 h)",
                "percentunit",
                (
                    'sum by (source) (rate(linkage_decisions_total{source=~"dtks|bpjs",band="auto_link"}[1h]))'
                    f" / ignoring (source) group_left sum(rate({DUKCAPIL}[1h]))",
                    "{{source}}",
                ),
            )
        )
        .with_panel(
            series(
                "Match probability distribution (members per bucket, 1 h)",
                "short",
                ("sum by (le) (increase(linkage_match_probability_bucket[1h]))", "<= {{le}}"),
                description="Cumulative buckets: a healthy model piles up near 1 and near 0, little in between.",
            )
        )
        .with_panel(
            series(
                "Candidate pairs per member",
                "short",
                ("histogram_quantile(0.5, sum by (le) (rate(linkage_candidate_pairs_bucket[15m])))", "p50"),
                ("histogram_quantile(0.95, sum by (le) (rate(linkage_candidate_pairs_bucket[15m])))", "p95"),
            )
        )
        .with_panel(
            series(
                "Engine call duration",
                "s",
                ("histogram_quantile(0.95, sum by (le) (rate(linkage_engine_call_seconds_bucket[5m])))", "p95"),
                (
                    "sum(rate(linkage_engine_batch_size_members_sum[5m]))"
                    " / sum(rate(linkage_engine_call_seconds_count[5m]))",
                    "members per call",
                ),
            )
        )
        .with_panel(series("Review backlog", "short", ("sum(linkage_review_backlog_members)", "members")))
        .with_row(Row("Model and master"))
        .with_panel(
            grid(
                "Running model and master",
                ("max by (model_version) (linkage_model_info)", "model"),
                ("max(linkage_master_records)", "master records"),
                ("max by (version) (regsosek_build_info)", "build"),
            )
        )
    )
