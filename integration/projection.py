"""Project linkage outputs onto what one subscription may see (data minimisation).

Only the fields the subscription lists are present; every internal id is replaced by the subscriber's
pseudonym (person ids, and the `member_key` / `family_key` slots: in clear they would be the same
value at every ministry and let two of them join their feeds); the raw NIK/KK appear only when the
subscription lists them (which its validation allows only with `may_receive_nik`).
"""

from __future__ import annotations

from contracts.linkage_outputs import IntegratedFamily, LinkedMember
from contracts.subscriptions import JsonScalar, ProjectedValue, RecordType, Subscription
from integration.pseudonyms import Pseudonymiser


def person_values(member: LinkedMember, pseudonyms: Pseudonymiser) -> dict[str, JsonScalar]:
    """Every projectable field of a person record (before the subscription's field list is applied).

    `member_key` is the subscriber's member pseudonym (the notification's Kafka key) and `family_key`
    its family pseudonym (the `reference_id` of that family's notifications): stable for one subscriber
    across updates, different at every other subscriber.
    """
    return {
        "nik": member.matched_nik,
        "member_key": pseudonyms.member(member.member_key),
        "family_key": pseudonyms.family(member.family_key),
        "serial": member.serial,
        # The family key starts with the province and regency codes (equal in BPS and Kemendagri).
        "province_code": member.family_key[:2],
        "regency_code": member.family_key[:4],
        "decision": member.decision.value,
        "band": member.band.value,
        "probability": member.probability,
        "in_dtks": member.sectoral.dtks_id is not None,
        "in_bpjs": member.sectoral.bpjs_id is not None,
        "dtks_id": member.sectoral.dtks_id,
        "bpjs_id": member.sectoral.bpjs_id,
        "dtks_decile": member.sectoral.dtks_decile,
        "revision": member.revision,
        "model_version": member.model_version,
    }


def family_values(family: IntegratedFamily, pseudonyms: Pseudonymiser) -> dict[str, ProjectedValue]:
    """Every projectable field of a family record; member ids already pseudonymised for this subscriber."""
    members: list[dict[str, JsonScalar]] = [
        {"serial": m.serial, "person_ref": pseudonyms.person(m.person_id), "decision": m.decision.value}
        for m in sorted(family.members, key=lambda m: m.serial)
    ]
    return {
        "kk_number": family.kk_number,
        "family_key": pseudonyms.family(family.family_key),
        "province_code": family.family_key[:2],
        "regency_code": family.family_key[:4],
        "member_count": len(family.members),
        "members": members,
        "kk_mismatch": family.flags.kk_mismatch,
        "members_not_in_master": family.flags.members_not_in_master,
        "deceased_in_master": family.flags.deceased_in_master_present_in_survey,
        "revision": family.revision,
        "model_version": family.model_version,
    }


def project(
    values: dict[str, ProjectedValue], subscription: Subscription, record_type: RecordType
) -> dict[str, ProjectedValue]:
    """Keep exactly the fields the subscription lists for `record_type`."""
    allowed = subscription.fields_for(record_type)
    return {name: values[name] for name in allowed}


def project_person(
    member: LinkedMember, subscription: Subscription, pseudonyms: Pseudonymiser
) -> dict[str, ProjectedValue]:
    """The person record as `subscription` may see it."""
    return project(dict(person_values(member, pseudonyms)), subscription, RecordType.PERSON)


def project_family(
    family: IntegratedFamily, subscription: Subscription, pseudonyms: Pseudonymiser
) -> dict[str, ProjectedValue]:
    """The family record as `subscription` may see it."""
    return project(family_values(family, pseudonyms), subscription, RecordType.FAMILY)


def matches_filters(
    subscription: Subscription,
    family_key: str,
    member: LinkedMember | None,
    deciles: tuple[int | None, ...] | None = None,
) -> bool:
    """Whether a record (a family, or a person when `member` is given) passes the subscription's filters.

    The decile filter is tested on `deciles` when given (a welfare change: the decile before and the
    one after, so a person leaving the subscriber's deciles is reported too), else on the member's.
    """
    regions = subscription.filters.region_codes
    if regions and not any(family_key.startswith(code) for code in regions):
        return False
    wanted = subscription.filters.deciles
    if wanted:
        if member is None:
            return False
        seen = deciles if deciles is not None else (member.sectoral.dtks_decile,)
        if not any(d in wanted for d in seen if d is not None):
            return False
    programmes = subscription.filters.programmes
    if programmes:
        if member is None:
            return False
        linked = {"dtks": member.sectoral.dtks_id is not None, "bpjs": member.sectoral.bpjs_id is not None}
        return any(linked[p] for p in programmes)
    return True
