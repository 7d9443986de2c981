"""Field feedback rules: a linked family revision and the previous revision's open items -> feedback records.

Pure: no Kafka, no store, no clock. The pipeline (`services/linker/pipeline.py`) calls `derive_feedback`
for every current family revision with the engine's links (sticky review decisions applied), the items
the link store kept open for the family, and the duplicate-family finding (`find_duplicate`).

Per member (in serial order; "present" = presence 1 lives here or 4 new member):
- `nik_not_in_master`: a NIK was recorded and it is not a master NIK.
- `nik_of_another_person`: a NIK was recorded, it is a master NIK, and the member is not linked to it:
  linked (by name, birth date, family) to another NIK, in review, or found nowhere (its holder's name or
  birth date differ).
- `member_not_found`: present, no NIK recorded, and not linked to anyone (no review candidate either).
- `dead_in_master`: present and linked to a master person who is dead.
- `kk_mismatch`: present and linked to a master person whose KK differs from the family's recorded KK
  (only a KK both sides know can differ).
Per family: `duplicate_family` when `find_duplicate` names another family.

Transitions: an item raised now and not open before is emitted `open` (raised by this revision); an
item open before and raised again is not emitted (it stays open, raised by its first revision); an item
open before and no longer raised is emitted `closed` (closed by this revision). So re-processing a
revision yields the same records, and a corrected revision closes what it fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from contracts.codes import Presence
from contracts.feedback import FeedbackKind, FeedbackStatus, FieldFeedback, feedback_item_id
from contracts.linkage_outputs import MemberDecision
from contracts.submission import FamilySubmission
from integration.outputs import decision_of
from integration.port import MemberLink

_PRESENT = (Presence.LIVES_HERE, Presence.NEW_MEMBER)
_CHECK_ID = "Check it against the member's KTP or the family card (KK)."

#: Duplicate rule: at least this many present linked members shared with one other family ...
DUPLICATE_MIN_SHARED = 2
# ... and at least half of this family's present linked members.


@dataclass(frozen=True)
class OpenItem:
    """An item the link store keeps open for a family: its kind, member and the revision that raised it."""

    kind: FeedbackKind
    serial: int | None
    raised_revision: int
    raised_submission_id: str

    def encode(self) -> str:
        """The stored form `kind|serial|revision|submission id` (a submission id has no `|`)."""
        serial = "" if self.serial is None else str(self.serial)
        return f"{self.kind.value}|{serial}|{self.raised_revision}|{self.raised_submission_id}"

    @classmethod
    def decode(cls, text: str) -> OpenItem:
        kind, serial, revision, submission_id = text.split("|", 3)
        return cls(FeedbackKind(kind), int(serial) if serial else None, int(revision), submission_id)


@dataclass(frozen=True)
class Duplicate:
    """Another family holding the same members; its key is shown only when the same team owns it."""

    other_family_key: str
    same_team: bool


@dataclass(frozen=True)
class FeedbackOutcome:
    """The records to produce (sorted by item id) and the items open after this revision."""

    records: list[FieldFeedback] = field(default_factory=list)
    open_items: tuple[OpenItem, ...] = ()


def message_for(kind: FeedbackKind, serial: int | None, other_family_key: str | None = None) -> str:
    """A short text for the enumerator: what to check. Names no NIK, KK number or name."""
    who = f"Member {serial:02d}" if serial is not None else "The family"
    if kind is FeedbackKind.NIK_NOT_IN_MASTER:
        return f"{who}: the NIK recorded is not in the Dukcapil population data. {_CHECK_ID}"
    if kind is FeedbackKind.NIK_OF_ANOTHER_PERSON:
        return (
            f"{who}: in the Dukcapil data the NIK recorded belongs to a person with another name or birth "
            "date. Check NIK, name and birth date against the member's KTP or the family card (KK)."
        )
    if kind is FeedbackKind.DEAD_IN_MASTER:
        return f"{who} lives here but is recorded as deceased in the Dukcapil data. Confirm identity and NIK."
    if kind is FeedbackKind.KK_MISMATCH:
        return (
            f"{who}: the family card (KK) number recorded differs from the member's KK in the Dukcapil "
            "data. Check the KK number, or whether the member has a KK of their own."
        )
    if kind is FeedbackKind.DUPLICATE_FAMILY:
        where = f" (family {other_family_key})" if other_family_key else ""
        return (
            f"The members of this family were already submitted under another family{where}. "
            "Check whether the family was enumerated twice."
        )
    return (
        f"{who} was not found in the Dukcapil data by name and birth date. Check the spelling of the name "
        "and the birth date, and record the NIK if the member has one."
    )


def raised_items(
    submission: FamilySubmission, links: Mapping[str, MemberLink], duplicate: Duplicate | None
) -> list[tuple[FeedbackKind, int | None]]:
    """The (kind, serial) pairs this revision raises, in serial order, the family-level kind last."""
    raised: list[tuple[FeedbackKind, int | None]] = []
    survey_kk = submission.kk_number
    for member in sorted(submission.members, key=lambda m: m.serial):
        link = links[submission.member_key(member)]
        decision = decision_of(link)
        present = member.presence in _PRESENT
        nik = member.nik
        linked = decision is MemberDecision.LINKED
        if nik and link.query_nik_in_master is False:
            raised.append((FeedbackKind.NIK_NOT_IN_MASTER, member.serial))
        elif nik and link.query_nik_in_master is True and not (linked and link.master_nik == nik):
            raised.append((FeedbackKind.NIK_OF_ANOTHER_PERSON, member.serial))
        if present and not nik and decision is MemberDecision.NOT_LINKED:
            raised.append((FeedbackKind.MEMBER_NOT_FOUND, member.serial))
        if present and linked and link.master_deceased:
            raised.append((FeedbackKind.DEAD_IN_MASTER, member.serial))
        if present and linked and survey_kk and link.master_kk_number and survey_kk != link.master_kk_number:
            raised.append((FeedbackKind.KK_MISMATCH, member.serial))
    if duplicate is not None:
        raised.append((FeedbackKind.DUPLICATE_FAMILY, None))
    return raised


def derive_feedback(
    submission: FamilySubmission,
    team: str,
    links: Mapping[str, MemberLink],
    previous: Iterable[OpenItem],
    duplicate: Duplicate | None = None,
) -> FeedbackOutcome:
    """The feedback records of one linked revision, given the items open before it (see the module doc)."""
    family_key = submission.family_key.key
    before = {feedback_item_id(family_key, o.kind, o.serial): o for o in previous}
    other = duplicate.other_family_key if duplicate is not None and duplicate.same_team else None
    now: dict[str, OpenItem] = {}
    records: list[FieldFeedback] = []
    for kind, serial in raised_items(submission, links, duplicate):
        item_id = feedback_item_id(family_key, kind, serial)
        kept = before.get(item_id)
        if kept is not None:
            now[item_id] = kept
            continue
        now[item_id] = OpenItem(kind, serial, submission.revision, submission.submission_id)
        records.append(
            _record(
                item_id,
                team,
                family_key,
                kind,
                serial,
                FeedbackStatus.OPEN,
                submission.revision,
                submission.submission_id,
                None,
                None,
                other,
            )
        )
    for item_id, old in before.items():
        if item_id not in now:
            records.append(
                _record(
                    item_id,
                    team,
                    family_key,
                    old.kind,
                    old.serial,
                    FeedbackStatus.CLOSED,
                    old.raised_revision,
                    old.raised_submission_id,
                    submission.revision,
                    submission.submission_id,
                    None,
                )
            )
    records.sort(key=lambda r: r.item_id)
    return FeedbackOutcome(records, tuple(now[k] for k in sorted(now)))


def _record(
    item_id: str,
    team: str,
    family_key: str,
    kind: FeedbackKind,
    serial: int | None,
    status: FeedbackStatus,
    raised: int,
    raised_id: str,
    closed: int | None,
    closed_id: str | None,
    other: str | None,
) -> FieldFeedback:
    return FieldFeedback(
        item_id=item_id,
        team=team,
        family_key=family_key,
        member_key=None if serial is None else f"{family_key}-{serial:02d}",
        serial=serial,
        kind=kind,
        status=status,
        raised_revision=raised,
        raised_submission_id=raised_id,
        closed_revision=closed,
        closed_submission_id=closed_id,
        message=message_for(kind, serial, other),
        other_family_key=other,
    )


def present_linked_niks(submission: FamilySubmission, links: Mapping[str, MemberLink]) -> frozenset[str]:
    """The master NIKs the family's present members are linked to (what `find_duplicate` compares)."""
    out = set()
    for member in submission.members:
        link = links[submission.member_key(member)]
        if member.presence in _PRESENT and decision_of(link) is MemberDecision.LINKED and link.master_nik:
            out.add(link.master_nik)
    return frozenset(out)


def find_duplicate(
    family_key: str, niks: frozenset[str], others: Mapping[str, Sequence[str]] | Mapping[str, frozenset[str]]
) -> str | None:
    """The other family holding the most of `niks` when it holds at least `DUPLICATE_MIN_SHARED` of them
    and at least half of them (ties: the lowest family key); None otherwise.

    `others` maps other family keys to the master NIKs their present members are linked to.
    """
    best: tuple[int, str] | None = None
    for other_key, other_niks in others.items():
        if other_key == family_key:
            continue
        shared = len(niks & set(other_niks))
        enough = shared >= DUPLICATE_MIN_SHARED and 2 * shared >= len(niks)
        if enough and (best is None or (-shared, other_key) < (-best[0], best[1])):
            best = (shared, other_key)
    return None if best is None else best[1]
