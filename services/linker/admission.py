"""Which submissions of a batch may revise their family: the owner rule and the revision-step rule.

Both rules need the family's stored state, so the pipeline applies them after its store read. They are
checked in arrival order, each accepted revision moving the family's running state, so a batch decides
exactly as the same records one by one would. A refused record becomes a dead letter with its reason;
the family stays revisable by its owner.

- **Owner** (`foreign_team`): the team that wrote a family's first accepted revision owns it (the
  gateway's `regsosek-team` header). A revision from any other team, or without a team while the family
  has an owner, is refused unless the team is a supervisor (`REGSOSEK_LINKER_SUPERVISOR_TEAMS`).
  A family stored before owners were kept (owner unknown) is claimed by the next team that revises it.
- **Step** (`revision_jump`): a revision may be at most `max_step` above the family's current revision
  (0 before its first). Without it one request with a huge revision makes every later genuine
  revision stale, for ever.

A stale revision (lower than the current one) is not refused here: it passes and produces nothing, as
before (a late re-delivery is normal). Only revisions that are accepted move the running state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.dead_letter import DeadLetter, DeadLetterReason, build_dead_letter
from contracts.submission import MAX_REVISION_STEP, FamilySubmission
from contracts.topics import TEAM_HEADER
from services.kafka.record import KafkaRecord
from services.linker.deadletter import OVERSIZED_PREFIX_BYTES
from services.linker.store import FamilyState


@dataclass(frozen=True)
class AdmissionRules:
    """The configurable part of the rules: supervisor teams and the largest revision step."""

    supervisors: frozenset[str] = frozenset()
    max_step: int = MAX_REVISION_STEP


@dataclass(frozen=True)
class Refusal:
    """A submission that may not revise its family: its position in the batch and why."""

    index: int
    reason: DeadLetterReason
    detail: str


@dataclass
class Admission:
    """The outcome for one batch: accepted positions (in order), refusals, and each family's owner."""

    accepted: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    owners: dict[str, str | None] = field(default_factory=dict)


def admit(
    submissions: Sequence[FamilySubmission],
    teams: Sequence[str | None],
    stored: Mapping[str, FamilyState],
    rules: AdmissionRules,
) -> Admission:
    """Apply the owner and step rules to a batch, in order, against the stored family states."""
    if len(teams) != len(submissions):
        raise ValueError(f"{len(teams)} teams for {len(submissions)} submissions")
    out = Admission()
    revision: dict[str, int] = {k: s.revision for k, s in stored.items()}
    owners: dict[str, str | None] = {k: s.owner for k, s in stored.items()}
    for index, (sub, team) in enumerate(zip(submissions, teams, strict=True)):
        key = sub.family_key.key
        owner = owners.get(key)
        current = revision.get(key, 0)
        refusal = _check(sub.revision, team, owner, current, rules)
        if refusal is not None:
            out.refused.append(Refusal(index, *refusal))
            continue
        out.accepted.append(index)
        if sub.revision >= current:
            revision[key] = sub.revision
            if owner is None:
                owners[key] = team
    out.owners = {sub.family_key.key: owners.get(sub.family_key.key) for sub in submissions}
    return out


def _check(
    revision: int, team: str | None, owner: str | None, current: int, rules: AdmissionRules
) -> tuple[DeadLetterReason, str] | None:
    if owner is not None and team != owner and not _supervisor(team, rules.supervisors):
        sender = "a record without a team" if team is None else f"team {team!r}"
        return DeadLetterReason.FOREIGN_TEAM, (
            f"revision {revision} from {sender}: the family belongs to team {owner!r}, which wrote its first "
            "revision; only that team or a supervisor team may revise it"
        )
    if revision > current + rules.max_step:
        return DeadLetterReason.REVISION_JUMP, (
            f"revision {revision} is more than {rules.max_step} above the family's current revision {current}"
        )
    return None


def _supervisor(team: str | None, supervisors: Collection[str]) -> bool:
    return team is not None and team in supervisors


def team_of(headers: Any) -> str | None:
    """The team a record names in its `regsosek-team` header (set by the gateway), or None.

    faust hands headers over as a list of (name, bytes) pairs or a mapping; a record with the header
    more than once names no single team, so it counts as unknown.
    """
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values = {bytes(v) for k, v in pairs if k == TEAM_HEADER and v is not None}
    if len(values) != 1:
        return None
    return values.pop().decode("utf-8", errors="replace") or None


def refusal_dead_letter(refusal: Refusal, value: bytes | None, key: bytes | None, source: KafkaRecord) -> DeadLetter:
    """The dead letter of a refused submission (deterministic: the source record's broker time).

    The payload is kept whole up to `OVERSIZED_PREFIX_BYTES`; a longer one (a valid body may be padded
    up to the size limit) is cut to that prefix so the record fits, and the detail names the original.
    """
    payload, detail = value, refusal.detail
    if value is not None and len(value) > OVERSIZED_PREFIX_BYTES:
        payload = value[:OVERSIZED_PREFIX_BYTES]
        detail += (
            f"; only the first {OVERSIZED_PREFIX_BYTES} bytes are kept here, the original is at "
            f"{source.topic}[{source.partition}]@{source.offset}"
        )
    return build_dead_letter(
        reason=refusal.reason,
        detail=detail,
        payload=payload,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        key=key,
        now=source.time,
    )
