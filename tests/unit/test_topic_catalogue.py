"""The catalogue's deployment partition count (`contracts.topics.catalogue_with`) and `regsosek topics list`."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from contracts.partitioning import partition_for
from contracts.topics import (
    CATALOGUE,
    DISTRICT_PARTITIONED,
    FIELD_FEEDBACK,
    LINK_STATE_CHANGELOG,
    POPULATION_CHANGES,
    SUBMISSIONS,
    SUBMISSIONS_DLQ,
    catalogue_with,
    topic_spec,
)


def test_a_deployment_count_applies_to_every_district_topic_and_no_other() -> None:
    scaled = {s.name: s for s in catalogue_with(64)}
    assert [s.name for s in catalogue_with(64)] == [s.name for s in CATALOGUE]
    assert {n for n, s in scaled.items() if s.partitions == 64} == DISTRICT_PARTITIONED
    assert scaled[SUBMISSIONS].partitions == scaled[LINK_STATE_CHANGELOG].partitions == 64
    assert scaled[SUBMISSIONS_DLQ].partitions == 1
    assert scaled[POPULATION_CHANGES].partitions == topic_spec(POPULATION_CHANGES).partitions == 4
    # Everything but the count is the catalogue's.
    assert scaled[SUBMISSIONS].configs() == topic_spec(SUBMISSIONS).configs()
    assert catalogue_with(None) is CATALOGUE


def test_the_catalogue_lists_one_count_for_all_district_topics() -> None:
    assert {topic_spec(name).partitions for name in DISTRICT_PARTITIONED} == {4}


@pytest.mark.parametrize("bad", [0, -3])
def test_a_count_below_one_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        catalogue_with(bad)


def test_a_family_lands_on_the_same_partition_number_of_every_district_topic_at_any_count() -> None:
    family = b"3603180010010100002001"
    for partitions in (4, 64):
        numbers = {partition_for(key, partitions) for key in (family, family + b"-01", family + b"/nik/01")}
        assert len(numbers) == 1


def test_topics_list_shows_the_deployment_count_and_keys_with_brackets(cli_app: typer.Typer) -> None:
    result = CliRunner().invoke(cli_app, ["topics", "list", "--partitions", "64"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert rows[SUBMISSIONS].split("│")[2].strip() == "64"
    assert rows[SUBMISSIONS_DLQ].split("│")[2].strip() == "1"
    # The feedback key's `[/<serial>]` is text, not console markup (it crashed the listing before).
    assert "[/<serial>]" in rows[FIELD_FEEDBACK]


def test_topics_list_refuses_a_count_below_one(cli_app: typer.Typer) -> None:
    result = CliRunner().invoke(cli_app, ["topics", "list", "--partitions", "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
