"""CloudEvents metadata of the output topics: the event `type`, `dataschema` and `source` of every record.

Every record the services write to an output topic carries CloudEvents 1.0 attributes as Kafka headers
(binary content mode of the Kafka protocol binding; `services.kafka.events` builds them). This module is the
contract part: which type and schema belong to which topic, and the source of each producing service.
All of them are constants, so the headers are a function of the record alone (docs/contracts.md,
"Headers (CloudEvents)").
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import topics

#: The media type of every value (UTF-8 JSON); the `content-type` header.
CONTENT_TYPE = "application/json"
#: CloudEvents spec version of the headers (`ce_specversion`).
SPEC_VERSION = "1.0"

#: Event types are reverse-DNS names under the domain of BPS (bps.go.id), with the contract's major version.
TYPE_PREFIX = "id.go.bps.regsosek."

#: `ce_source` of each producing service: stable names, the same on every instance, so a replay by
#: another instance writes the same headers.
LINKER_SOURCE = "urn:regsosek:service:linker"
PUBLISHER_SOURCE = "urn:regsosek:service:publisher"
REVIEW_SOURCE = "urn:regsosek:service:review"

_SCHEMA_PREFIX = "urn:regsosek:contract:"  # the `$id` of the schema files (contracts.schema_export)


@dataclass(frozen=True)
class EventKind:
    """The CloudEvents `type` and `dataschema` (the schema file's `$id`) of one output topic's records."""

    type: str
    dataschema: str


def _kind(name: str, schema_stem: str) -> EventKind:
    return EventKind(TYPE_PREFIX + name, _SCHEMA_PREFIX + schema_stem)


#: The kinds of records, by contract. A service maps each topic it writes (the names come from its
#: settings; the defaults are the catalogue's) to one of them.
MEMBER = _kind("linkage.member.v1", "linked_member.v1")
FAMILY = _kind("linkage.family.v1", "integrated_family.v1")
REVIEW_TASK = _kind("linkage.review_task.v1", "review_task.v1")
UPDATE = _kind("linkage.update.v1", "linkage_update.v1")
DEAD_LETTER = _kind("submission.dead_letter.v1", "dead_letter.v1")
REVIEW_DECISION = _kind("linkage.review_decision.v1", "review_decision.v1")
NOTIFICATION = _kind("subscriber.notification.v1", "notification.v1")
FIELD_FEEDBACK = _kind("field.feedback.v1", "field_feedback.v1")

#: The kind of every output topic of the catalogue (`subscriber.<id>.notifications.v1`: NOTIFICATION).
CATALOGUE_KINDS: dict[str, EventKind] = {
    topics.LINKED_MEMBERS: MEMBER,
    topics.LINKED_FAMILIES: FAMILY,
    topics.REVIEW: REVIEW_TASK,
    topics.UPDATES: UPDATE,
    topics.SUBMISSIONS_DLQ: DEAD_LETTER,
    topics.REVIEW_DECISIONS: REVIEW_DECISION,
    topics.FIELD_FEEDBACK: FIELD_FEEDBACK,
}
