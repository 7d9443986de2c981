"""The DuckDB link store: its in-memory copy of revisions and minted ids stays equal to the file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from integration.port import MemberQuery
from services.linker.member_state import MemberState
from services.linker.store import FamilyState, LinkStore, StoreUpdate

FAMILY = "3603010001000100010001"
OTHER = "3603010001000100020001"


def _member(family: str, serial: int, revision: int, decision: str = "linked") -> MemberState:
    key = f"{family}-{serial:02d}"
    query = MemberQuery(
        record_id=key,
        nik=None,
        kk_number=None,
        full_name=f"NAMA {serial}",
        sex="F",
        birth_date="1990-05-17",
        birth_year=1990,
        age=None,
        reference_year=2026,
        village_code="3603010001",
        address=None,
        family_key=family,
        head_name="KEPALA",
    )
    return MemberState(key, family, revision, decision, None, query, b'{"m":1}', b'{"f":1}', blocking_keys=(serial,))


def _update(family: str, revision: int, serials: tuple[int, ...], minted: dict[str, str] | None = None) -> StoreUpdate:
    update = StoreUpdate()
    update.families[family] = FamilyState(revision, f"sub-{family}-{revision}", serials)
    update.members.update({f"{family}-{s:02d}": _member(family, s, revision) for s in serials})
    update.minted.update(minted or {})
    return update


def _member_rows(path: Path) -> list[tuple[str, int]]:
    store = LinkStore(path)
    try:
        con = store._con  # noqa: SLF001 - the test reads the table the store writes
        rows = con.execute("SELECT member_key, revision FROM member_links ORDER BY member_key, revision").fetchall()
        return [(str(k), int(r)) for k, r in rows]
    finally:
        store.close()


def test_revisions_and_minted_ids_are_read_back_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "links.duckdb"
    store = LinkStore(path)
    store.apply(_update(FAMILY, 2, (1, 2), {f"{FAMILY}-02": "u-aaa"}))
    store.apply(_update(OTHER, 1, (1,)))
    store.close()

    reopened = LinkStore(path)
    assert reopened.families([FAMILY, OTHER, "3603010001000100030001"]) == {
        FAMILY: FamilyState(2, f"sub-{FAMILY}-2", (1, 2)),
        OTHER: FamilyState(1, f"sub-{OTHER}-1", (1,)),
    }
    assert reopened.minted_ids([f"{FAMILY}-01", f"{FAMILY}-02"]) == {f"{FAMILY}-02": "u-aaa"}
    reopened.close()


def test_the_copy_keeps_the_highest_revision_and_the_first_minted_id(tmp_path: Path) -> None:
    path = tmp_path / "links.duckdb"
    store = LinkStore(path)
    store.apply(_update(FAMILY, 3, (1, 2), {f"{FAMILY}-01": "u-first"}))
    store.apply(_update(FAMILY, 2, (1,), {f"{FAMILY}-01": "u-second"}))  # late, older: changes nothing
    assert store.families([FAMILY]) == {FAMILY: FamilyState(3, f"sub-{FAMILY}-3", (1, 2))}
    assert store.minted_ids([f"{FAMILY}-01"]) == {f"{FAMILY}-01": "u-first"}
    store.close()
    reopened = LinkStore(path)  # the file agrees with the copy
    assert reopened.families([FAMILY]) == {FAMILY: FamilyState(3, f"sub-{FAMILY}-3", (1, 2))}
    assert reopened.minted_ids([f"{FAMILY}-01"]) == {f"{FAMILY}-01": "u-first"}
    reopened.close()


def test_a_known_family_replaces_its_member_rows_and_a_new_one_appends(tmp_path: Path) -> None:
    path = tmp_path / "links.duckdb"
    store = LinkStore(path)
    store.apply(_update(FAMILY, 1, (1, 2)))
    store.apply(_update(FAMILY, 1, (1, 2)))  # a re-delivery: the same rows, not twice
    newer = _update(FAMILY, 2, (1,))
    newer.dropped_members.add(f"{FAMILY}-02")
    store.apply(newer)
    store.apply(_update(OTHER, 1, (1, 3)))
    store.close()
    assert _member_rows(path) == [(f"{FAMILY}-01", 2), (f"{OTHER}-01", 1), (f"{OTHER}-03", 1)]


def test_member_rows_read_back_by_name_with_none_for_unknown(tmp_path: Path) -> None:
    import duckdb

    from services.linker.member_state import SCHEMA, find_family_members, write_members

    con = duckdb.connect(str(tmp_path / "members.duckdb"))
    con.execute(SCHEMA)
    state = _member(FAMILY, 1, 3)
    write_members(con, {state.member_key: state})
    (back,) = find_family_members(con, [FAMILY], partition=2)
    assert back == replace(state, partition=2)
    assert (back.query.nik, back.query.kk_number, back.query.address) == (None, None, None)
    # a row written while queries held "" for unknown text reads back as a query with None
    con.execute("UPDATE member_links SET q_kk_number = '', q_sex = '', q_village_code = '', q_address = ''")
    (old,) = find_family_members(con, [FAMILY])
    assert old.query == replace(state.query, sex=None, village_code=None)
    con.close()
