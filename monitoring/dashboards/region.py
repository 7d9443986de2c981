"""Region progress: how far the enumeration is, per district of the regency, and in total."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from monitoring.dashboards.panels import bars, grid, single

# Submitted/linked gauges are summed over linker instances (each counts its own partitions' families);
# the expected gauges are the same in every instance, so they are taken once (max).
FAMILIES = "sum by (district) (regsosek_region_families_submitted)"
FAMILIES_EXPECTED = "max by (district) (regsosek_region_families_expected)"
MEMBERS = "sum by (district) (regsosek_region_members_submitted)"
MEMBERS_EXPECTED = "max by (district) (regsosek_region_members_expected)"
LINKED = "sum by (district) (regsosek_region_members_linked)"
REVIEW = "sum by (district) (regsosek_region_members_review)"


def _total(expr: str) -> str:
    return f"sum({expr})"


def region_dashboard() -> Dashboard:
    """What a regency head asks: how many families and people are enumerated and linked, per district."""
    return (
        Dashboard("REGSOSEK region progress")
        .uid("regsosek-region-progress")
        .tags(["regsosek", "region"])
        .refresh("5m")
        .time("now-7d", "now")
        .timezone("browser")
        .with_row(Row("Regency totals"))
        .with_panel(
            single(
                "Families enumerated / expected",
                "percentunit",
                f"{_total(FAMILIES)} / {_total(FAMILIES_EXPECTED)}",
                decimals=1,
            )
        )
        .with_panel(
            single(
                "Members enumerated / expected",
                "percentunit",
                f"{_total(MEMBERS)} / {_total(MEMBERS_EXPECTED)}",
                decimals=1,
            )
        )
        .with_panel(
            single(
                "Members auto-linked to Dukcapil",
                "percentunit",
                f"{_total(LINKED)} / {_total(MEMBERS)}",
                decimals=1,
            )
        )
        .with_panel(single("Families enumerated", "short", _total(FAMILIES)))
        .with_row(Row("Per district"))
        .with_panel(
            bars(
                "Family coverage per district",
                "percentunit",
                f"{FAMILIES} / ({FAMILIES_EXPECTED} > 0)",
                "{{district}}",
                description="Families submitted over family cards of living residents in the master.",
            )
        )
        .with_panel(
            bars(
                "Member coverage per district",
                "percentunit",
                f"{MEMBERS} / ({MEMBERS_EXPECTED} > 0)",
                "{{district}}",
            )
        )
        .with_panel(
            bars(
                "Link rate per district",
                "percentunit",
                f"{LINKED} / ({MEMBERS} > 0)",
                "{{district}}",
                description="Members auto-linked over members submitted; low values point to data-quality work.",
            )
        )
        .with_panel(
            bars(
                "Members waiting for review per district",
                "short",
                REVIEW,
                "{{district}}",
            )
        )
        .with_panel(
            grid(
                "District table",
                (FAMILIES, "families"),
                (FAMILIES_EXPECTED, "families expected"),
                (MEMBERS, "members"),
                (MEMBERS_EXPECTED, "members expected"),
                (LINKED, "linked"),
                (REVIEW, "review"),
            )
        )
    )
