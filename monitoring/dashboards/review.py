"""Clerical review board: backlog and its age, decisions per reviewer role and regency, second-review
agreement, refusals, and the field-feedback items the gateway serves to enumerator teams."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from monitoring.dashboards.panels import bars, series, single

AGREEMENT = (
    'sum(increase(regsosek_review_second_decisions_total{result="agree"}[1d]))'
    ' / sum(increase(regsosek_review_second_decisions_total{result=~"agree|disagree"}[1d]))'
)


def review_dashboard() -> Dashboard:
    """Is the review queue under control, who decides it, do second reviewers agree, is feedback closing."""
    return (
        Dashboard("REGSOSEK clerical review")
        .uid("regsosek-review")
        .tags(["regsosek", "review"])
        .refresh("1m")
        .time("now-7d", "now")
        .timezone("browser")
        .with_row(Row("Backlog"))
        .with_panel(
            single(
                "Open review tasks",
                "short",
                "sum(regsosek_review_open_tasks)",
                description="Alert ReviewBacklogGrowing: above 500 and 200 more than 6 hours ago.",
            )
        )
        .with_panel(
            single(
                "Oldest open task",
                "s",
                "max(regsosek_review_oldest_open_task_age_seconds)",
                description="Alert ReviewTaskTooOld above 7 days.",
            )
        )
        .with_panel(
            single(
                "Open second reviews",
                "short",
                "sum(regsosek_review_open_second_reviews)",
                description="Held decisions waiting for a second, agreeing reviewer.",
            )
        )
        .with_panel(
            single(
                "Second-review agreement (1 day)",
                "percentunit",
                AGREEMENT,
                decimals=1,
                description="Agreeing / (agreeing + disagreeing) second decisions (label agreement).",
            )
        )
        .with_panel(
            series(
                "Open tasks by age",
                "short",
                ("sum by (age) (regsosek_review_open_tasks_by_age)", "{{age}}"),
                description="Age since the task's record time; the queue works oldest day first.",
            )
        )
        .with_panel(
            series(
                "Open tasks and decisions per hour",
                "short",
                ("sum(regsosek_review_open_tasks)", "open"),
                (
                    'sum(increase(regsosek_review_decisions_total{outcome=~"accept|new_person"}[1h]))',
                    "decided per hour",
                ),
            )
        )
        .with_row(Row("Decisions"))
        .with_panel(
            series(
                "Decisions per hour by reviewer role and outcome",
                "short",
                ("sum by (role, outcome) (increase(regsosek_review_decisions_total[1h]))", "{{role}} {{outcome}}"),
            )
        )
        .with_panel(
            bars(
                "Decisions by regency (7 days)",
                "short",
                "sum by (regency) (increase(regsosek_review_decisions_total[7d]))",
                "{{regency}}",
                description="Regency = 4 digits of the family key (per-district counts are on the queue page).",
            )
        )
        .with_panel(
            series(
                "Second-review decisions per hour by agreement",
                "short",
                ("sum by (result) (increase(regsosek_review_second_decisions_total[1h]))", "{{result}}"),
                description="unknown: the held decision was not recorded by this app instance.",
            )
        )
        .with_panel(
            series(
                "Refused decisions per hour by reason",
                "short",
                ("sum by (reason) (increase(regsosek_review_decisions_refused_total[1h]))", "{{reason}}"),
                description="Alert ReviewDecisionsRefused on broker refusals or more than 20 in 15 minutes.",
            )
        )
        .with_row(Row("Field feedback (gateway)"))
        .with_panel(
            series(
                "Open feedback items by kind",
                "short",
                ("sum by (kind) (regsosek_gateway_feedback_open_items)", "{{kind}}"),
            )
        )
        .with_panel(
            series(
                "Feedback items opened and closed per hour",
                "short",
                ("sum by (transition) (increase(regsosek_gateway_feedback_items_total[1h]))", "{{transition}}"),
            )
        )
    )
