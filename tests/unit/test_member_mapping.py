"""The one mapping of a survey member to the engine's linkage record (integration/mapping.py), used by the
streaming linker (`family_queries` -> `record_columns`) and the batch commands (services/world.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmission
from integration.mapping import family_queries, record_columns
from linkage.records import MEMBER_SCHEMA, member_table
from services.cli import _register, app
from services.world import WorldInputError, load_world_source, member_records, read_submissions
from synthetic import generate_world

CROSSWALK = {"3603010001": "3603122001"}
DOC: dict[str, Any] = {
    "schema_version": "1",
    "submission_id": "S-3603-0000001-r1",
    "revision": 1,
    "enumerator_code": "E-01",
    "enumerated_at": "2023-03-02T09:15:00+07:00",
    "family_key": {
        "province": "36",
        "regency": "03",
        "district": "010",
        "village": "001",
        "sls": "0001",
        "sub_sls": "00",
        "building_serial": "001",
        "family_serial": "001",
    },
    "address": {"street": "Jl. Melati No. 12", "rt": "002", "rw": "005"},
    "kk_number": "3603121705150003",
    "head_name": " Ahmad Fauzi ",
    "member_count": 2,
    "members": [
        {
            "serial": 2,
            "name": "Siti",
            "nik": "",
            "presence": 1,
            "birth_date": {"day": 98, "month": 98, "year": 9998},
            "age": 40,
            "relationship": 2,
        },
        {
            "serial": 1,
            "name": "Ahmad Fauzi",
            "nik": "3603121505800002",
            "presence": 1,
            "sex": 1,
            "birth_date": {"day": 15, "month": 5, "year": 1980},
            "age": 42,
            "relationship": 1,
        },
    ],
}
HEAD = {
    "nik": "3603121505800002",
    "kk_number": "3603121705150003",
    "full_name": "Ahmad Fauzi",
    "sex": "M",
    "birth_date": "1980-05-15",
    "birth_year": 1980,
    "village_code": "3603122001",
    "address": "Jl. Melati No. 12 RT 002 RW 005",  # RT/RW joined to the street line
    "family_key": "3603010001000100001001",
    "head_name": "Ahmad Fauzi",
    "relationship": 1,
    "submission_id": "S-3603-0000001-r1",
}


def submission() -> FamilySubmission:
    return FAMILY_SUBMISSION_ADAPTER.validate_python(DOC)


def test_streaming_records_are_the_mapped_members_in_serial_order() -> None:
    rows = member_table(record_columns(family_queries(submission(), CROSSWALK))).to_pylist()
    assert rows[0] == {"record_id": "3603010001000100001001-01", **HEAD}
    # unknown is None (the questionnaire's 98 / 9998, a blank NIK, no sex); without a birth year the
    # engine gets the visit's year (2023) minus the age
    assert rows[1] == {
        **HEAD,
        "record_id": "3603010001000100001001-02",
        "nik": None,
        "full_name": "Siti",
        "sex": None,
        "birth_date": None,
        "birth_year": 1983,
        "relationship": 2,
    }


def test_batch_records_map_the_same_way_keyed_by_submission() -> None:
    batch = member_records([submission()], CROSSWALK)
    streaming = member_table(record_columns(family_queries(submission(), CROSSWALK)))
    assert batch.schema.equals(MEMBER_SCHEMA)
    by_serial = {r["record_id"].rsplit("/", 1)[1]: r for r in batch.to_pylist()}
    assert sorted(by_serial) == ["1", "2"]  # listing order kept, ids `<submission id>/<serial>`
    for row in streaming.to_pylist():
        serial = str(int(row["record_id"][-2:]))
        assert by_serial[serial] == {**row, "record_id": f"S-3603-0000001-r1/{serial}"}


def test_without_a_crosswalk_the_village_is_unknown() -> None:
    (row,) = [r for r in member_records([submission()], None).to_pylist() if r["relationship"] == 1]
    assert row["village_code"] is None


def test_fields_breaking_the_contract_are_blanked_and_bad_lines_skipped_with_a_summary(tmp_path: Path) -> None:
    bad_nik = {**DOC, "submission_id": "S-2", "members": [{**DOC["members"][1], "nik": "1234"}], "member_count": 1}
    no_members = {k: v for k, v in DOC.items() if k != "members"}
    path = tmp_path / "submissions.jsonl"
    path.write_text(
        f"{json.dumps(DOC)}\n\n{json.dumps(bad_nik)}\nnot json\n{json.dumps(no_members)}\n", encoding="utf-8"
    )
    read = read_submissions(path)
    assert [s.submission_id for s in read.submissions] == ["S-3603-0000001-r1", "S-2"]
    (member,) = read.submissions[1].members
    assert member.nik is None and member.name == DOC["members"][1]["name"]  # the rest is kept
    assert read.repaired == {"invalid_nik": 1} and read.repaired_lines == [3]
    assert read.skipped == [(4, "not_json"), (5, "schema_violation")]
    summary = read.summary(path)
    assert summary == (
        f"{path}: 1 submission(s) read with fields blanked (invalid_nik 1; lines 3); "
        "2 line(s) skipped (not_json 1, schema_violation 1; lines 4, 5)"
    )
    assert "1234" not in summary
    path.write_text("not json\n", encoding="utf-8")
    with pytest.raises(WorldInputError, match=r"no line is a valid FamilySubmission \(line 1: not_json\)"):
        read_submissions(path)
    path.write_text(f"{json.dumps(DOC)}\n", encoding="utf-8")
    assert read_submissions(path).summary(path) is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    generate_world(folder, persons=300, seed=5)
    return folder


def test_world_sources_convert_with_the_generators_record_ids(world: Path) -> None:
    truth = pq.read_table(world / "truth.parquet").to_pylist()
    for source, tag in (("members", "member"), ("dtks", "dtks"), ("bpjs", "bpjs")):
        master, records = load_world_source(world, source)
        assert master.num_rows == 300
        assert master.column("record_id").to_pylist() == master.column("nik").to_pylist()
        ids = records.column("record_id").to_pylist()
        assert sorted(ids) == sorted(r["record_id"] for r in truth if r["source"] == tag)
    members = load_world_source(world, "members")[1]
    villages = members.column("village_code").to_pylist()
    # every survey family's BPS village is in the crosswalk, so every member has a Kemendagri village
    assert all(v is not None and len(v) == 10 for v in villages)


def test_evaluate_links_a_world_with_a_bad_date_in_one_line_and_says_so(world: Path, tmp_path: Path) -> None:
    _register()
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("population.parquet", "crosswalk.parquet", "truth.parquet"):
        (broken / name).write_bytes((world / name).read_bytes())
    lines = (world / "submissions.jsonl").read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[1])
    doc["members"][0]["birth_date"] = {"day": 31, "month": 2, "year": 1990}
    (broken / "submissions.jsonl").write_text("\n".join([lines[0], json.dumps(doc), *lines[2:]]) + "\n")
    result = CliRunner().invoke(app, ["evaluate", "--world", str(broken), "--no-baseline"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {broken / 'submissions.jsonl'}: 1 submission(s) read with fields blanked (invalid_date 1; lines 2)"
    ]
    assert "auto-link recall" in result.output
