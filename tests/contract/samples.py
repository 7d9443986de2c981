"""Sample records of every published contract, produced by our own code (not hand-written JSON).

Inputs come from the committed v1 examples; outputs from the linker's pipeline (members, families, feedback,
review tasks), the dead-letter decoder, the updates test builders and the publisher (notifications).
Used by the Ajv test (tests/contract/test_ajv_schemas.py) and the `contracts validate` tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from contracts.decode import ContractViolation, decode_family_submission
from contracts.linkage_outputs import to_canonical_json
from contracts.linkage_updates import UpdateEventType
from contracts.topics import LINKED_MEMBERS, UPDATES
from integration.ids import PersonIds
from integration.pseudonyms import KeyRing
from services.kafka.record import KafkaRecord
from services.linker.pipeline import OutputTopics, SubmissionLinker
from services.linker.store import LinkStore
from services.privacy.disclosure import DisclosureLog
from services.publisher.core import Publisher
from tests.contract.helpers import FIXTURES_V1, fixture_paths, kind_of
from tests.support.linker import (
    FAMILY_KEY,
    FakeMasterPerson,
    FakeMemberLinker,
    member_payload,
    nik_for,
    submission_payload,
)
from tests.support.linking import link_batch
from tests.support.publisher import EXAMPLE_SECRETS, example_registry, linked_member, update_event

_TOPIC_SCHEMA = {
    "m": "linked_member.v1.json",
    "f": "integrated_family.v1.json",
    "r": "review_task.v1.json",
    "fb": "field_feedback.v1.json",
}
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def input_samples() -> dict[str, list[dict[str, Any]]]:
    """The committed canonical v1 examples per schema file (the lenient ones document no schema form)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in fixture_paths():
        if "lenient" not in path.name:
            out.setdefault(kind_of(path)[1], []).append(json.loads(path.read_text(encoding="utf-8")))
    return out


def linker_samples() -> dict[str, list[dict[str, Any]]]:
    """Member, family and review-task records of one four-member family through the real pipeline."""
    ahmad, siti = nik_for(2), nik_for(3, female=True)
    fake = FakeMemberLinker.of(
        [
            FakeMasterPerson(ahmad, "Ahmad Fauzi", "3603121705150003", dtks_id="DTKS-1"),
            FakeMasterPerson(siti, "Siti Aminah", "3603121705150003"),
        ]
    )
    members = [
        member_payload(1, "Ahmad Fauzi", ahmad),
        member_payload(2, "Sity Aminah", siti, sex=2, relationship=2),
        member_payload(3, "Budi", None, relationship=3, birth=(None, None, 2010)),
    ]
    doc = submission_payload(members)
    submission = decode_family_submission(json.dumps(doc).encode(), key=FAMILY_KEY.encode())
    store = LinkStore(":memory:")
    linker = SubmissionLinker(fake, PersonIds(b"k"), OutputTopics("m", "f", "r", "fb"))
    out: dict[str, list[dict[str, Any]]] = {}
    first = link_batch(linker, store, [submission], ["team-a"])
    store.apply(first.update)
    # Revision 2 corrects member 2's name: its feedback item is closed (field feedback, open and closed).
    members[1] = member_payload(2, "Siti Aminah", siti, sex=2, relationship=2)
    corrected = decode_family_submission(
        json.dumps(submission_payload(members, revision=2)).encode(), key=FAMILY_KEY.encode()
    )
    for rec in [*first.records, *link_batch(linker, store, [corrected], ["team-a"]).records]:
        if rec.value is not None:
            out.setdefault(_TOPIC_SCHEMA[rec.topic], []).append(json.loads(rec.value))
    return out


def dead_letter_samples() -> list[dict[str, Any]]:
    """Dead letters the edge decoder builds for a broken and for an invalid payload."""
    out = []
    for payload in (b"{not json", b'{"family_key": 7}'):
        try:
            decode_family_submission(payload, key=b"k")
        except ContractViolation as e:
            letter = e.dead_letter(
                payload=payload, source_topic="t", source_partition=0, source_offset=1, key=b"k", now=NOW
            )
            out.append(json.loads(letter.model_dump_json()))
    return out


def update_and_notification_samples(tmp_db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every kind of update event, and the notifications the publisher makes of a member and the events."""
    before = linked_member(1, nik="3603121505800002", dtks_id="D-1")
    after = linked_member(1, nik="3603121505800002", dtks_id="D-1", revision=2)
    updates = [update_event(kind, before, after, change_id=f"c-{kind.value}") for kind in UpdateEventType]
    publisher = Publisher(example_registry(), KeyRing(EXAMPLE_SECRETS), DisclosureLog(tmp_db), clock=lambda: NOW)
    ts = int(NOW.timestamp() * 1000)
    sources = [KafkaRecord(LINKED_MEMBERS, 0, 1, before.member_key.encode(), to_canonical_json(before), ts)]
    sources += [
        KafkaRecord(UPDATES, 0, i + 2, u.member_key.encode(), to_canonical_json(u), ts) for i, u in enumerate(updates)
    ]
    notifications = [json.loads(n.envelope.model_dump_json()) for s in sources for n in publisher.handle(s)]
    return {
        "linkage_update.v1.json": [json.loads(to_canonical_json(u)) for u in updates],
        "notification.v1.json": notifications,
    }


def all_samples(tmp_db: Any) -> dict[str, list[dict[str, Any]]]:
    """Samples for every schema file (each list non-empty)."""
    out = input_samples()
    out.setdefault("dead_letter.v1.json", []).extend(dead_letter_samples())
    for extra in (linker_samples(), update_and_notification_samples(tmp_db)):
        for name, records in extra.items():
            out.setdefault(name, []).extend(records)
    return out


__all__ = ["FIXTURES_V1", "all_samples"]
