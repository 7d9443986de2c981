"""The Kafka topic catalogue: every topic the system uses, with its shape and what its keys mean.

`regsosek topics create` provisions exactly this list and reports any difference on the broker.
Topic names carry the major version of their value schema (`.v1`); a breaking change is a new topic.
Partition counts are equal (4 here, set per deployment: `catalogue_with`) for topics keyed by family or
member key, and a member key is partitioned by its family key's district (`contracts.partitioning`, used
by every producer), so a consumer that joins them sees one family on one partition number everywhere
(co-partitioning).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

CleanupPolicy = Literal["delete", "compact"]

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1
#: How long a tombstone (a record with a null value) stays on a compacted topic after compaction
#: reached it (`delete.retention.ms`; the broker's default is 1 day). Consumers read the compacted
#: linkage topics weekly or after a holiday: one that is behind by more than this misses the deletion
#: and keeps the deleted key forever. A week and a day covers a weekly reader that was a day late.
TOMBSTONE_RETENTION_MS = 8 * DAY_MS

SUBMISSIONS = "regsosek.submissions.v1"
SUBMISSIONS_DLQ = "regsosek.submissions.dlq.v1"
POPULATION_CHANGES = "dukcapil.population.changes.v1"
DTKS_CHANGES = "sectoral.dtks.changes.v1"
BPJS_CHANGES = "sectoral.bpjs.changes.v1"
LINKED_MEMBERS = "linkage.members.v1"
LINKED_FAMILIES = "linkage.families.v1"
REVIEW = "linkage.review.v1"
UPDATES = "linkage.updates.v1"
REVIEW_DECISIONS = "linkage.review.decisions.v1"
FIELD_FEEDBACK = "field.feedback.v1"
LINK_STATE_CHANGELOG = "regsosek.linker.state.changelog.v1"

#: The largest record (key + value) the services produce themselves, e.g. a dead letter. The catalogue
#: keeps the broker's default limit (`message.max.bytes` 1,048,588 bytes per record batch; the
#: producers' `max.request.size` is 1,048,576), and kafka-python consumers refuse a fetch response above
#: 1,000,000 bytes by default (`receive_message_max_bytes`): one such record with its batch and
#: response headers stays below all three.
MAX_RECORD_BYTES = 960_000

#: The largest payload (record value, or request body) a service accepts: 1 MiB, the producers'
#: `max.request.size`. The gateway answers 413 above it; the linker dead-letters a larger submission,
#: change or review decision as `too_large` (with a prefix of it: the dead letter stays under
#: `MAX_RECORD_BYTES`). A family questionnaire is a few kB.
MAX_PAYLOAD_BYTES = 1_048_576

#: Header of every record on SUBMISSIONS: the enumerator team that sent it (the gateway writes it from
#: the bearer token; the linker keeps the first team of a family as its owner). Never personal data.
TEAM_HEADER = "regsosek-team"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, partitions, cleanup policy, retention, and the meaning of its key and value."""

    name: str
    partitions: int
    cleanup_policy: CleanupPolicy
    retention_ms: int
    key: str
    value_schema: str
    description: str
    #: `delete.retention.ms` of a compacted topic (None: the broker's default, 1 day).
    tombstone_retention_ms: int | None = None

    def configs(self) -> dict[str, str]:
        """The topic-level broker configs this spec implies (what `topics create` sets and checks)."""
        configs = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.tombstone_retention_ms is not None:
            configs["delete.retention.ms"] = str(self.tombstone_retention_ms)
        return configs


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        SUBMISSIONS,
        4,
        "delete",
        FOREVER,
        key="family key (REGSOSEK22-K, 22 digits); all revisions of a family land on one partition",
        value_schema="FamilySubmission v1",
        # Kept forever: the submissions are the source of truth a new linkage model is replayed from.
        description="family questionnaires as enumerated, including re-submitted revisions",
    ),
    TopicSpec(
        SUBMISSIONS_DLQ,
        1,
        "delete",
        30 * DAY_MS,
        key="the original record's key, unchanged (family key when it could be read)",
        value_schema="DeadLetter v1",
        description="submissions that could not be parsed or validated, with the original bytes and reason",
    ),
    TopicSpec(
        POPULATION_CHANGES,
        4,
        "delete",
        30 * DAY_MS,
        key="opaque person reference issued with the change (never the raw NIK)",
        value_schema="PopulationChange v1",
        description="Dukcapil master changes: born, died, moved, corrected, kk_changed",
    ),
    TopicSpec(
        DTKS_CHANGES,
        2,
        "delete",
        30 * DAY_MS,
        key="id_dtks (the DTKS row id)",
        value_schema="DtksRecord v1",
        description="new and changed rows of the Kemensos DTKS social-welfare data",
    ),
    TopicSpec(
        BPJS_CHANGES,
        2,
        "delete",
        30 * DAY_MS,
        key="noka (the BPJS Kesehatan card number)",
        value_schema="BpjsRecord v1",
        description="new and changed BPJS Kesehatan PBI-JK memberships",
    ),
    TopicSpec(
        LINKED_MEMBERS,
        4,
        "compact",
        FOREVER,
        key="member key (<family key>-<serial, 2 digits>)",
        value_schema="LinkedMember v1",
        # Compacted: the latest link per member is the state; consumers upsert. A member dropped by a
        # newer revision of its family gets a tombstone (null value), kept TOMBSTONE_RETENTION_MS.
        description="the current link decision for every submitted family member",
        tombstone_retention_ms=TOMBSTONE_RETENTION_MS,
    ),
    TopicSpec(
        LINKED_FAMILIES,
        4,
        "compact",
        FOREVER,
        key="family key (REGSOSEK22-K)",
        value_schema="IntegratedFamily v1",
        description="the current linkage summary of every family (KK match, members linked)",
        tombstone_retention_ms=TOMBSTONE_RETENTION_MS,
    ),
    TopicSpec(
        REVIEW,
        4,
        "delete",
        90 * DAY_MS,
        key="member key",
        value_schema="ReviewTask v1",
        description="uncertain matches sent to clerical review",
    ),
    TopicSpec(
        UPDATES,
        4,
        "delete",
        7 * DAY_MS,
        key="member key",
        value_schema="LinkageUpdate v1",
        description="changes of an existing link caused by population or sectoral changes",
    ),
    TopicSpec(
        REVIEW_DECISIONS,
        4,
        "delete",
        FOREVER,
        key="member key",
        value_schema="ReviewDecision v1",
        # Kept forever: the audit trail of clerical decisions and the labels a model is trained on.
        description="clerical reviewers' decisions on review tasks (accept, new person, skip, undo)",
    ),
    TopicSpec(
        FIELD_FEEDBACK,
        4,
        "compact",
        FOREVER,
        key="feedback item id (<family key>/<kind>[/<serial>]), partitioned by its family key",
        value_schema="FieldFeedback v1",
        # Compacted: the latest state (open or closed) per item is what a team's devices need; the
        # gateway rebuilds its index from it at start. Closed items stay, so a late device learns of them.
        description="items an enumerator team can fix in the field (NIK, KK, death, duplicate, not found)",
    ),
    TopicSpec(
        LINK_STATE_CHANGELOG,
        4,
        "compact",
        FOREVER,
        key="family key (REGSOSEK22-K), on the partition number of the submissions partition it arrived on",
        value_schema="linker family state (internal, versioned by its `v` field: services/linker/changelog.py)",
        # The linker's own state (revision, minted ids, member link states per family); the per-partition
        # link-store files are a cache of it, restored from it when an instance takes a partition over.
        # Compacted: the latest state per family is all a restore needs. Families are never deleted.
        description="the linker's per-family link-store state; an instance without the files restores from it",
    ),
)


#: The topics partitioned by district (`contracts.partitioning`: keyed by family key, member key or
#: feedback item id). They must all have the same partition count: a partition number then holds the
#: same districts on every one of them, and the linker's changelog partition matches its submissions
#: partition.
DISTRICT_PARTITIONED: frozenset[str] = frozenset(
    {
        SUBMISSIONS,
        LINKED_MEMBERS,
        LINKED_FAMILIES,
        REVIEW,
        UPDATES,
        REVIEW_DECISIONS,
        FIELD_FEEDBACK,
        LINK_STATE_CHANGELOG,
    }
)


def catalogue_with(partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """The catalogue with `partitions` partitions on every district-partitioned topic (None: as listed).

    The catalogue's 4 suit development and tests; a national deployment sets the count when it creates
    the topics (`regsosek topics create --partitions 64`, docs/capacity.md "Partitions"). Kafka can add
    partitions to a topic later but not move keys that are already on it: choose the count up front.
    """
    if partitions is None:
        return CATALOGUE
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return tuple(
        replace(spec, partitions=partitions) if spec.name in DISTRICT_PARTITIONED else spec for spec in CATALOGUE
    )


def topic_spec(name: str) -> TopicSpec:
    """The catalogue entry for `name`; KeyError names the unknown topic."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(f"topic {name!r} is not in the catalogue")
