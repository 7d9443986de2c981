"""Family tie-break with the head's name: hand-made families where the head decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from linkage import batch
from linkage.model.artefact import ModelArtefact
from linkage.normalise.family import (
    HEAD_BONUS,
    Candidate,
    HeadContext,
    MasterHead,
    MemberHead,
    choose_best,
    master_heads,
    member_heads,
)
from linkage.records import LINKAGE_COLUMNS

KK1, KK2 = "3603120101000001", "3603120101000002"
# Master families: (record id, KK, name, Dukcapil relationship).
MASTER = [
    ("FATHER", KK1, "AHMAD FAUZI", "KEPALA KELUARGA"),
    ("SON", KK1, "AHMAD FAUZI", "ANAK"),
    ("WIFE", KK1, "SITI AMINAH", "ISTRI"),
    ("BUDI", KK2, "BUDI SANTOSO", "KEPALA KELUARGA"),
    ("SITI2", KK2, "SITI AMINAH", "ANAK"),
]


def master_table(rows: list[tuple[str, str, str, str]] = MASTER) -> pa.Table:
    return pa.Table.from_pylist(
        [{"record_id": r, "kk_number": kk, "full_name": n, "relationship": rel} for r, kk, n, rel in rows]
    )


def records_table(members: list[tuple[str, str, int | None]]) -> pa.Table:
    """Members as (record id, head name of the submission, questionnaire relationship)."""
    return pa.Table.from_pylist(
        [
            {"record_id": rid, "submission_id": rid.split("/")[0], "head_name": head, "relationship": rel}
            for rid, head, rel in members
        ],
        schema=pa.schema(
            [
                ("record_id", pa.string()),
                ("submission_id", pa.string()),
                ("head_name", pa.string()),
                ("relationship", pa.int64()),
            ]
        ),
    )


@dataclass(frozen=True)
class Case:
    name: str
    members: list[tuple[str, str, int | None]]
    pairs: list[tuple[str, str, float]]
    with_head: dict[str, str | None]  # record -> chosen master record with the head's name
    without_head: dict[str, str | None]  # ... with the KK / other members only


CASES = [
    Case(
        # Father and son share a name and (near enough) a birth year: the son's record scores a little
        # higher against the father's master record, so greedy one-to-one alone swaps them.
        "father and son with the same name",
        [("s1/1", "Ahmad Fauzi", 1), ("s1/3", "Ahmad Fauzi", 3)],
        [("s1/1", "FATHER", 20.0), ("s1/1", "SON", 20.5), ("s1/3", "FATHER", 21.0), ("s1/3", "SON", 20.0)],
        {"s1/1": "FATHER", "s1/3": "SON"},
        {"s1/1": "SON", "s1/3": "FATHER"},
    ),
    Case(
        # Exact tie (no birth date, no NIK on either record); the son is serial 1 here, so without the
        # head's name the ids decide and give him the head's record.
        "father and son tie exactly",
        [("s1/1", "H. AHMAD FAUZI", 3), ("s1/2", "H. AHMAD FAUZI", 1)],
        [("s1/1", "FATHER", 18.0), ("s1/1", "SON", 18.0), ("s1/2", "FATHER", 18.0), ("s1/2", "SON", 18.0)],
        {"s1/1": "SON", "s1/2": "FATHER"},
        {"s1/1": "FATHER", "s1/2": "SON"},
    ),
    Case(
        # A child's record close to the head's master record (the father left out of the submission).
        "a child's record does not take the head's master record",
        [("s2/3", "Ahmad Fauzi", 3)],
        [("s2/3", "FATHER", 19.0), ("s2/3", "SON", 17.5)],
        {"s2/3": "SON"},
        {"s2/3": "FATHER"},
    ),
    Case(
        # The wife carries her husband's NIK; the husband's own record is weak (no NIK, name variant).
        "a member carrying the head's NIK",
        [("s3/1", "Achmad Fauzi", 1), ("s3/2", "Achmad Fauzi", 2)],
        [("s3/1", "FATHER", 10.0), ("s3/2", "FATHER", 12.0), ("s3/2", "WIFE", 11.0)],
        {"s3/1": "FATHER", "s3/2": "WIFE"},
        {"s3/1": None, "s3/2": "FATHER"},
    ),
    Case(
        # Same name and birth year in two families, no NIK and no KK number: the head's name picks the family.
        "namesakes in two families",
        [("s4/2", "Budi Santoso", 3)],
        [("s4/2", "WIFE", 15.5), ("s4/2", "SITI2", 15.0)],
        {"s4/2": "SITI2"},
        {"s4/2": "WIFE"},
    ),
    Case(
        # A clear score gap is never overturned by the head's name.
        "a clear gap wins over the head",
        [("s5/1", "Ahmad Fauzi", 3)],
        [("s5/1", "FATHER", 20.0 + 2 * HEAD_BONUS + 0.5), ("s5/1", "SON", 20.0)],
        {"s5/1": "FATHER"},
        {"s5/1": "FATHER"},
    ),
    Case(
        # The submission's head is not the master family's head (the head changed): no evidence.
        "head name of another person",
        [("s6/1", "Joko Widodo", 1), ("s6/3", "Joko Widodo", 3)],
        [("s6/1", "FATHER", 20.0), ("s6/1", "SON", 20.5), ("s6/3", "FATHER", 21.0), ("s6/3", "SON", 20.0)],
        {"s6/1": "SON", "s6/3": "FATHER"},
        {"s6/1": "SON", "s6/3": "FATHER"},
    ),
]


def _choose(case: Case, heads: HeadContext | None) -> dict[str, str | None]:
    pairs = [Candidate(r, m, w, 0.999) for r, m, w in case.pairs]
    groups = {rid: rid.split("/")[0] for rid, _, _ in case.members}
    choices = choose_best(pairs, groups, heads)
    return {rid: (c.candidate.master_record_id if c.candidate is not None else None) for rid, c in choices.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_head_name_decides_close_candidates(case: Case) -> None:
    heads = HeadContext(member_heads(records_table(case.members)), master_heads(master_table()))
    assert _choose(case, heads) == case.with_head
    assert _choose(case, None) == case.without_head


def test_reported_weights_stay_the_scores() -> None:
    case = CASES[0]
    heads = HeadContext(member_heads(records_table(case.members)), master_heads(master_table()))
    pairs = [Candidate(r, m, w, 0.999) for r, m, w in case.pairs]
    choices = choose_best(pairs, {"s1/1": "s1", "s1/3": "s1"}, heads)
    head, son = choices["s1/1"], choices["s1/3"]
    assert head.candidate == pairs[0] and head.runner_up_weight == 20.5
    assert son.candidate == pairs[3] and son.runner_up_weight == 21.0


def test_master_heads_from_the_relationship_column() -> None:
    heads = master_heads(master_table())
    assert heads["FATHER"] == MasterHead("AHMADFAUZI", True)
    assert heads["SON"] == MasterHead("AHMADFAUZI", False)
    assert heads["SITI2"] == MasterHead("BUDISANTOSO", False)
    # Questionnaire code 1 counts as head too.
    coded = master_heads(master_table([("A", KK1, "Eko Prasetyo", "1"), ("B", KK1, "Eko Prasetyo", "3")]))
    assert coded == {"A": MasterHead("EKOPRASETYO", True), "B": MasterHead("EKOPRASETYO", False)}


def test_kk_with_no_single_head_gives_no_evidence() -> None:
    two_heads = [("A", KK1, "Eko", "KEPALA KELUARGA"), ("B", KK1, "Joko", "KEPALA KELUARGA"), ("C", KK1, "Ani", "ANAK")]
    no_head = [("D", KK2, "Eko", "ANAK")]
    assert master_heads(master_table(two_heads + no_head)) == {}
    no_column = master_table().drop_columns(["relationship"])
    assert master_heads(no_column) == {}


def test_member_heads_normalise_the_head_name() -> None:
    members = member_heads(
        records_table([("s/1", "H. Moch. Budi Santoso, S.Pd.", 1), ("s/2", "", 2), ("s/3", "Budi", None)])
    )
    assert members == {"s/1": MemberHead("MUHAMMADBUDISANTOSO", True), "s/3": MemberHead("BUDI", None)}
    # The same columns read from a CSV file: text codes, empty fields.
    csv = pa.table(
        {"record_id": ["c/1", "c/2", "c/3"], "head_name": ["Budi", "Budi", ""], "relationship": ["1", "", "3"]}
    )
    assert member_heads(csv) == {"c/1": MemberHead("BUDI", True), "c/2": MemberHead("BUDI", None)}


def test_link_file_uses_the_head_name_when_the_master_knows_the_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scoring is faked (the Splink scores are tested elsewhere); this checks the wiring of link_file.
    case = CASES[0]

    def linkage_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{c: r.get(c) for c in LINKAGE_COLUMNS} | r for r in rows]

    master = pa.Table.from_pylist(
        linkage_rows(
            [
                {"record_id": r, "nik": r, "kk_number": kk, "full_name": n, "relationship": rel}
                for r, kk, n, rel in MASTER
            ]
        )
    )
    records = pa.Table.from_pylist(
        linkage_rows(
            [
                {
                    "record_id": rid,
                    "full_name": "Ahmad Fauzi",
                    "submission_id": "s1",
                    "head_name": head,
                    "relationship": rel,
                }
                for rid, head, rel in case.members
            ]
        )
    )
    fake = [Candidate(r, m, w, 0.9999) for r, m, w in case.pairs]
    monkeypatch.setattr(batch, "predict_pairs", lambda *a, **k: fake)
    artefact = ModelArtefact({}, {"thresholds": {"auto_link": 0.99, "review": 0.5}})
    links, _ = batch.link_file(master, records, artefact=artefact)
    assert dict(zip(links["record_id"].to_pylist(), links["master_record_id"].to_pylist(), strict=True)) == {
        "s1/1": "FATHER",
        "s1/3": "SON",
    }
    assert links["match_weight"].to_pylist() == [20.0, 20.0]
    # Without the master's relationship column the family tie-break uses the other members only.
    links, _ = batch.link_file(master.drop_columns(["relationship"]), records, artefact=artefact)
    assert links["master_record_id"].to_pylist() == ["SON", "FATHER"]
