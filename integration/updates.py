"""Update rules: what re-linking a stored member after a change publishes (the rules of
`contracts/linkage_updates.py`).

A master change, a sectoral row or a clerical decision re-links members the link store holds
(`services/linker/updates/applier.py` finds them and runs the engine). Per member, these pure functions decide
the new member record (`relinked_member`: the same rules as the linker's, `integration/outputs.py`),
the review task of a member newly in the review band (`change_review_task`), the event time of a
change (`change_event_time`) and the `linkage.updates.v1` events (`update_events`).
"""

from __future__ import annotations

import datetime as dt

from contracts.linkage_outputs import LinkedMember, PersonIdKind, ReviewTask
from contracts.linkage_updates import (
    AnyLinkageUpdate,
    LinkChanged,
    LinkCreated,
    Merged,
    PersonDied,
    PersonMoved,
    Split,
    UpdateCause,
    UpdateEventType,
    WelfareChanged,
    summary_of,
    update_event_id,
)
from integration.ids import PersonIds
from integration.outputs import MemberSlot, member_record, person_id_of, review_task
from integration.port import MemberLink


def relinked_member(old: LinkedMember, link: MemberLink, ids: PersonIds, model_version: str) -> LinkedMember:
    """The member record `old` becomes with its new `link` (no event time: the caller sets it). A member
    that was not linked keeps the id minted for it."""
    slot = MemberSlot(old.member_key, old.family_key, old.serial, old.submission_id, old.revision)
    minted = old.person_id if old.person_id_kind is PersonIdKind.MINTED else None
    person_id, kind = person_id_of(link, ids, old.member_key, minted)
    return member_record(slot, link, person_id, kind, model_version, None)


def change_review_task(
    member: LinkedMember, link: MemberLink, cause: UpdateCause, ids: PersonIds, time: dt.datetime
) -> ReviewTask:
    """The review task of a member a change put in the review band (the single candidate)."""
    # One task per member, revision and change: re-processing the change yields the same id.
    task_id = f"{member.member_key}/r{member.revision}/{cause.change_id}"
    return review_task(
        task_id,
        member.member_key,
        member.submission_id,
        member.revision,
        link,
        ids,
        member.model_version,
        time,
        ranked=False,
    )


def change_event_time(time: dt.datetime | None, cause: UpdateCause) -> dt.datetime:
    """The event time of the records a change causes: when it happened (`time`), in UTC. A change
    journalled before the time was kept has none: its effective date (midnight UTC), else the Unix epoch."""
    if time is not None:
        return time.astimezone(dt.UTC)
    day = cause.effective_date or dt.date(1970, 1, 1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def update_events(
    cause: UpdateCause,
    old: LinkedMember,
    new: LinkedMember,
    changed_nik: str | None,
    record_changed: bool,
    time: dt.datetime,
) -> list[AnyLinkageUpdate]:
    """The update events of one re-linked member: `old` and `new` record, the NIK the change was about
    (None: a clerical decision, a sectoral row without NIK) and whether the record changed."""
    kinds: list[UpdateEventType] = []
    before_master = old.person_id_kind is PersonIdKind.MASTER
    after_master = new.person_id_kind is PersonIdKind.MASTER
    if old.person_id != new.person_id:
        if after_master and not before_master:
            kinds = [UpdateEventType.LINK_CREATED, UpdateEventType.MERGED]
        elif before_master and not after_master:
            kinds = [UpdateEventType.SPLIT]
        else:
            kinds = [UpdateEventType.LINK_CHANGED]
    else:
        linked_to_change = new.matched_nik is not None and new.matched_nik == changed_nik
        if linked_to_change and cause.change == "died":
            kinds = [UpdateEventType.PERSON_DIED]
        elif linked_to_change and cause.change == "moved":
            kinds = [UpdateEventType.MOVED]
        elif (record_changed and _changed_besides_decile(old, new)) or (
            linked_to_change and cause.change in ("corrected", "kk_changed")
        ):
            kinds = [UpdateEventType.LINK_CHANGED]
        if old.sectoral.dtks_decile != new.sectoral.dtks_decile:
            # The same person's welfare decile changed (a DTKS row with a new `desil`, or the person
            # entered or left DTKS): its own event, besides any link change.
            kinds.append(UpdateEventType.WELFARE_CHANGED)
    return [_event(kind, cause, old, new, time) for kind in kinds]


def _changed_besides_decile(old: LinkedMember, new: LinkedMember) -> bool:
    """Whether the record changed in anything but the DTKS decile (that alone is `welfare_changed`)."""
    same_decile = old.sectoral.model_copy(update={"dtks_decile": new.sectoral.dtks_decile})
    return old.model_copy(update={"sectoral": same_decile, "event_time": new.event_time}) != new


def _event(
    kind: UpdateEventType, cause: UpdateCause, old: LinkedMember, new: LinkedMember, time: dt.datetime
) -> AnyLinkageUpdate:
    common = {
        "event_id": update_event_id(cause.change_id, new.member_key, kind),
        "member_key": new.member_key,
        "family_key": new.family_key,
        "cause": cause,
        "before": summary_of(old),
        "after": summary_of(new),
        "member": new,
        "event_time": time,
    }
    ids = {"old_person_id": old.person_id, "new_person_id": new.person_id}
    match kind:
        case UpdateEventType.LINK_CREATED:
            return LinkCreated.model_validate(common)
        case UpdateEventType.MERGED:
            return Merged.model_validate({**common, **ids})
        case UpdateEventType.SPLIT:
            return Split.model_validate({**common, **ids})
        case UpdateEventType.PERSON_DIED:
            return PersonDied.model_validate(common)
        case UpdateEventType.MOVED:
            return PersonMoved.model_validate(common)
        case UpdateEventType.WELFARE_CHANGED:
            deciles = {"decile_before": old.sectoral.dtks_decile, "decile_after": new.sectoral.dtks_decile}
            return WelfareChanged.model_validate({**common, **deciles})
        case _:
            return LinkChanged.model_validate(common)
