"""Review tasks carry the ranked candidates and the DTKS decile (fake engine), and stay byte-identical
to the earlier records when the engine ranks nothing."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.decode import decode_family_submission
from contracts.linkage_outputs import REVIEW_TASK_ADAPTER
from integration.ids import PersonIds
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch

IDS = PersonIds(b"test-key")
SITI, SITTI, SYT = nik_for(3, female=True), nik_for(7, female=True), nik_for(9, day=2, female=True)
OTHER = nik_for(8)
KEY = f"{FAMILY_KEY}-02"


def _tasks(tmp_path: Path, *, rank: bool) -> dict[str, bytes]:
    fake = FakeMemberLinker.of(
        [
            FakeMasterPerson(SITI, "Siti Aminah", "3603121705150003", dtks_id="D-1", dtks_decile=3),
            FakeMasterPerson(SITTI, "Sitti Aminah", "3603121705150009"),
            FakeMasterPerson(SYT, "Siti Amina", "3603121705150010"),
            FakeMasterPerson(OTHER, "Budi Santoso", "3603121705150011"),
        ]
    )
    fake.rank_candidates = rank
    members = [member_payload(1, "Ahmad Fauzi", None), member_payload(2, "Sity Aminah", SITI, sex=2)]
    doc = submission_payload(members)
    sub = decode_family_submission(json.dumps(doc).encode(), key=FAMILY_KEY.encode())
    linker = SubmissionLinker(fake, IDS, OutputTopics("m", "f", "r"))
    store = LinkStore(tmp_path / f"l{rank}.duckdb")
    result = link_batch(linker, store, [sub])
    return {r.key.decode(): r.value for r in result.records if r.topic == "r" and r.key and r.value}


def test_a_review_task_carries_ranked_candidates_with_person_ids_and_the_decile(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path, rank=True)
    assert list(tasks) == [KEY]
    task = REVIEW_TASK_ADAPTER.validate_json(tasks[KEY])
    assert task.candidate_nik == SITI
    assert task.dtks_decile == 3
    got = [(c.rank, c.nik, c.person_id, c.probability, c.match_weight, c.explanation) for c in task.candidates]
    assert got == [
        (1, SITI, IDS.for_master(SITI), 0.6, 1.25, {"full_name": -8.75, "nik": 10.0}),
        # the sound-alike master persons, by NIK; Budi Santoso sounds different and is left out
        (2, SYT, IDS.for_master(SYT), 0.25, -1.5, {"full_name": 8.5, "nik": -10.0}),
        (3, SITTI, IDS.for_master(SITTI), 0.25, -1.5, {"full_name": 8.5, "nik": -10.0}),
    ]


def test_without_ranking_and_decile_the_task_bytes_have_neither_field(tmp_path: Path) -> None:
    tasks = _tasks(tmp_path, rank=False)
    data = json.loads(tasks[KEY])
    assert "candidates" not in data
    # the decile is the candidate's; a task whose candidate has none carries no key at all
    assert data["dtks_decile"] == 3
    plain = REVIEW_TASK_ADAPTER.validate_json(tasks[KEY]).model_copy(update={"dtks_decile": None})
    assert b"dtks_decile" not in plain.__pydantic_serializer__.to_json(plain)
