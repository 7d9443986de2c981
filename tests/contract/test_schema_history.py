"""Every committed schema against every released version of it in git history (Confluent's transitive
modes: FULL for outputs, BACKWARD for inputs), and the compatibility check itself on known changes."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contracts.compat import Mode, breaks
from contracts.schema_export import SCHEMA_DIR
from contracts.schema_history import history_breaks, released_ref, released_versions

REPO = Path(__file__).resolve().parents[2]
ACKNOWLEDGED = json.loads((REPO / "contracts" / "compat_acknowledged.json").read_text(encoding="utf-8"))


def _git_checkout() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("the schema history check needs git and a git checkout (not an sdist)")


def test_no_unacknowledged_break_with_any_released_version() -> None:
    _git_checkout()
    known = {(e["schema"], e["commit"]): set(e["reasons"]) for e in ACKNOWLEDGED}
    unacknowledged = [
        (b.file_name, b.commit[:10], sorted(set(b.reasons) - known.get((b.file_name, b.commit), set())))
        for b in history_breaks(REPO)
    ]
    assert [u for u in unacknowledged if u[2]] == [], "a schema change breaks a released version (docs/contracts.md)"


def test_every_acknowledged_break_says_why() -> None:
    assert all(e["why"] and e["reasons"] and len(e["commit"]) == 40 for e in ACKNOWLEDGED)


def test_history_holds_the_released_versions() -> None:
    _git_checkout()
    ref = released_ref(REPO)
    member_versions = released_versions(REPO, "contracts/schemas/linked_member.v1.json", ref)
    assert len(member_versions) >= 2
    # The earliest released member schema was closed and had no DTKS decile: the issue 14 case.
    first = member_versions[-1][1]
    assert first["additionalProperties"] is False
    assert "dtks_decile" not in first["$defs"]["SectoralMatches"]["properties"]


def _member() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "linked_member.v1.json").read_text(encoding="utf-8"))


def test_an_optional_output_field_breaks_nobody() -> None:
    old, new = _member(), _member()
    new["properties"]["added_later"] = {"type": "string", "format": "date-time"}
    assert breaks(new, old, Mode.FULL, declared_only=True) == []


def test_an_optional_field_breaks_a_closed_schema_read_as_written() -> None:
    # What hurt the consumers in issue 14: a closed v1 copy and a field added inside v1.
    old, new = _member(), _member()
    old["additionalProperties"] = False
    new["properties"]["added_later"] = {"type": "string"}
    assert breaks(new, old, Mode.FORWARD) == [
        "new data rejected by old schema: $.added_later: the writer adds a field the reader's closed schema forbids",
        "new data rejected by old schema: $.*: the reader forbids a value the writer allows",
    ]


def test_a_new_required_field_breaks_backward() -> None:
    old, new = _member(), _member()
    new["properties"]["added_later"] = {"type": "string"}
    new["required"] = [*new["required"], "added_later"]
    assert breaks(new, old, Mode.FULL, declared_only=True) == [
        "old data rejected by new schema: $: the reader requires 'added_later', the writer may omit it"
    ]


def test_a_changed_type_breaks_both_ways() -> None:
    old, new = _member(), copy.deepcopy(_member())
    new["properties"]["serial"] = {"type": "string"}
    assert breaks(new, old, Mode.FULL, declared_only=True) == [
        "old data rejected by new schema: $.serial: types ['integer'] not within ['string']",
        "new data rejected by old schema: $.serial: types ['string'] not within ['integer']",
    ]


def test_enum_values_removed_break_backward_and_added_break_forward() -> None:
    old, fewer, more = _member(), _member(), _member()
    fewer["$defs"]["MemberDecision"]["enum"] = ["linked", "not_linked"]
    more["$defs"]["MemberDecision"]["enum"] = ["linked", "pending_review", "not_linked", "withdrawn"]
    assert breaks(fewer, old, Mode.BACKWARD, declared_only=True) == [
        "old data rejected by new schema: $.decision: the reader drops allowed values ['pending_review']"
    ]
    assert breaks(fewer, old, Mode.FORWARD, declared_only=True) == []
    assert breaks(more, old, Mode.FORWARD, declared_only=True) == [
        "new data rejected by old schema: $.decision: the reader drops allowed values ['withdrawn']"
    ]


def test_an_optional_input_field_is_compatible_and_a_new_pattern_is_not() -> None:
    old = json.loads((SCHEMA_DIR / "population_record.v1.json").read_text(encoding="utf-8"))
    added, tightened = copy.deepcopy(old), copy.deepcopy(old)
    added["properties"]["kecamatan_name"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert breaks(added, old, Mode.BACKWARD, declared_only=True) == []
    tightened["properties"]["full_name"] = {**old["properties"]["full_name"], "pattern": "^[A-Z ]+$"}
    assert breaks(tightened, old, Mode.BACKWARD, declared_only=True) == [
        "old data rejected by new schema: $.full_name: the reader requires pattern '^[A-Z ]+$'"
    ]


def test_an_unknown_keyword_is_a_break_until_someone_looks() -> None:
    old, new = _member(), _member()
    new["properties"]["serial"]["multipleOf"] = 2
    assert breaks(new, old, Mode.BACKWARD, declared_only=True) == [
        "old data rejected by new schema: $.serial: reader uses keywords this check does not know: ['multipleOf']"
    ]
