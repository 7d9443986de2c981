"""The linker's port to the linkage engine: what the service needs, in the service's own words.

The service codes against `MemberLinker`; `engine_adapter.py` implements it with the real
`linkage.engine.LinkageEngine`, tests/support/linker.py (not shipped) with a small fake for tests.
Keeping the port here lets the service be tested without the trained models, and keeps the engine free
of service concerns.

Observation is a capability of the engine object itself (`ObservableLinker`), not a wrapper around it:
the object the pipeline links with is the one the master updates modify (`services/linker/updates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from linkage.observer import LinkageObserver

# `clerical_link`: a reviewer accepted the candidate (integration/clerical.py), never the engine.
Band = Literal["auto_link", "review", "no_match", "clerical_link"]


@dataclass(frozen=True)
class MemberQuery:
    """One survey member as the engine links it (the data model's linkage record plus family context),
    built by `integration.mapping.member_query` only.

    `record_id` is the member key. None is "unknown" for every optional field (never an empty string).
    Dates are `YYYY-MM-DD`; `sex` is `M` or `F`; `village_code` is the Kemendagri 10-digit code of the
    family key's BPS village when the crosswalk knows it. `birth_year` is the year as written; `age`
    (completed years at the visit) and `reference_year` (the visit's year) give the engine a birth year
    when it is not (`integration.mapping.birth_year_of`, the one age rule).
    """

    record_id: str
    nik: str | None
    kk_number: str | None
    full_name: str
    sex: str | None
    birth_date: str | None
    birth_year: int | None
    age: int | None
    reference_year: int
    village_code: str | None
    address: str | None
    family_key: str
    head_name: str
    relationship: int | None = None
    submission_id: str = ""


@dataclass(frozen=True)
class RankedCandidate:
    """One of a member's best master candidates (review tasks show them to the clerk), best first."""

    master_nik: str
    probability: float | None
    match_weight: float | None
    explanation: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberLink:
    """The engine's verdict for one member; master facts are those of the best candidate (if any)."""

    record_id: str
    band: Band
    master_nik: str | None
    probability: float | None
    match_weight: float | None
    runner_up_weight: float | None
    explanation: dict[str, float] = field(default_factory=dict)
    master_kk_number: str | None = None
    master_deceased: bool = False
    dtks_id: str | None = None
    bpjs_id: str | None = None
    dtks_decile: int | None = None  # the welfare decile of the DTKS row behind `dtks_id`
    # The query's blocking-key hashes (the engine's `query_keys`): a later master record sharing one
    # could be paired with this member by the engine (services/linker/updates finds members by them).
    blocking_keys: tuple[int, ...] = ()
    # Review band only: the best candidates, the chosen one (`master_nik`) first; empty when the engine
    # does not rank them (the review task then carries the single candidate).
    candidates: tuple[RankedCandidate, ...] = ()
    # Whether the member's own (survey) NIK is a master NIK, whoever holds it; None: no NIK given, or not
    # looked up (field feedback: integration/feedback.py).
    query_nik_in_master: bool | None = None


class MemberLinker(Protocol):
    """Links a batch of members to the population master; one `MemberLink` per query, same order."""

    @property
    def model_version(self) -> str: ...

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]: ...


@runtime_checkable
class ObservableLinker(Protocol):
    """A `MemberLinker` that reports each of its calls to a `LinkageObserver` (metrics), whoever calls it."""

    def attach_observer(self, observer: LinkageObserver) -> None:
        """From now on report every `link` call: its size and duration, and each member's decision for
        the Dukcapil master and for the DTKS and BPJS databases."""
        ...


def report_sectoral(observer: LinkageObserver, links: Sequence[MemberLink]) -> None:
    """Report each link's DTKS and BPJS decision: found through the linked master NIK, or not."""
    for link in links:
        observer.record_decided("dtks", "auto_link" if link.dtks_id else "no_match", None, None)
        observer.record_decided("bpjs", "auto_link" if link.bpjs_id else "no_match", None, None)
