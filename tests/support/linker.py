"""Test doubles of the linker's port (not shipped: tests/support/), shared by unit and integration tests.

`FakeMemberLinker` decides by exact NIK lookup in a tiny master: same NIK and same name -> auto_link,
same NIK but another name -> review. A query without such a NIK falls back to a second "blocking rule",
a crude sound key of the name plus the birth year (`fake_sound`), against the master persons that have
a birth date: exactly one such person -> auto_link; otherwise no_match. It records the batch sizes it
was called with. Its blocking keys (`fake_blocking_keys`) are hashes of those two rules' keys, so a
member and a master person share one exactly when the fake could pair them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from integration.master import MasterPerson, SectoralSource
from integration.port import Band, MemberLink, MemberQuery, RankedCandidate, report_sectoral
from linkage.observer import NO_OBSERVER, LinkageObserver


@dataclass(frozen=True)
class FakeMasterPerson:
    """A master person of the fake: just what the linker's outputs need."""

    nik: str
    full_name: str
    kk_number: str
    deceased: bool = False
    dtks_id: str | None = None
    bpjs_id: str | None = None
    dtks_decile: int | None = None
    birth_date: str | None = None  # ISO; a person without one is found by NIK only


def fake_sound(name: str) -> str:
    """The fake's phonetic name code: letters only, no vowels or h after the first letter, no doubles
    ("Sitti Nurhalizah" and "Siti Nurhaliza" -> "stnrlz")."""
    letters = [c for c in name.casefold() if c.isalpha()]
    if not letters:
        return ""
    out = [letters[0]]
    for c in letters[1:]:
        if c not in "aeiouh" and c != out[-1]:
            out.append(c)
    return "".join(out)


def _hash(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def fake_blocking_keys(nik: str | None, name: str, birth_year: int | None) -> tuple[int, ...]:
    """The fake's blocking-key hashes: the NIK, and the sound key of the name with the birth year."""
    keys = []
    if nik:
        keys.append(_hash("nik", nik))
    sound = fake_sound(name)
    if sound and birth_year is not None:
        keys.append(_hash("sound+year", sound, str(birth_year)))
    return tuple(sorted(keys))


def _year(birth_date: str | None) -> int | None:
    return int(birth_date[:4]) if birth_date else None


@dataclass
class FakeMemberLinker:
    """A deterministic in-memory `MemberLinker`."""

    master: dict[str, FakeMasterPerson] = field(default_factory=dict)
    version: str = "fake-1"
    batch_sizes: list[int] = field(default_factory=list)
    fail_with: Exception | None = None
    observer: LinkageObserver = field(default=NO_OBSERVER, repr=False)
    #: Off by default (existing records stay as they were): give review links ranked candidates, the
    #: NIK's person first, then the master persons whose name sounds like theirs (`fake_sound`), by NIK.
    rank_candidates: bool = False

    @classmethod
    def of(cls, people: Iterable[FakeMasterPerson], version: str = "fake-1") -> FakeMemberLinker:
        """A fake whose master holds `people`."""
        return cls(master={p.nik: p for p in people}, version=version)

    @property
    def model_version(self) -> str:
        return self.version

    def attach_observer(self, observer: LinkageObserver) -> None:
        """Report every `link` call like the real engine does (without candidate counts)."""
        self.observer = observer

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        """Link by NIK; raises `fail_with` when set (to test infrastructure failures)."""
        if self.fail_with is not None:
            raise self.fail_with
        started = time.perf_counter()
        self.batch_sizes.append(len(members))
        by_sound: dict[int, list[FakeMasterPerson]] = {}
        for person in self.master.values():
            if person.birth_date:
                key = fake_blocking_keys(None, person.full_name, _year(person.birth_date))
                if key:
                    by_sound.setdefault(key[0], []).append(person)
        links = [
            replace(self._one(q, by_sound), query_nik_in_master=(q.nik in self.master) if q.nik else None)
            for q in members
        ]
        if self.observer is not NO_OBSERVER and links:
            self.observer.batch_linked(len(links), time.perf_counter() - started)
            for link in links:
                band = link.band
                if band != "clerical_link":  # never the fake's own band (a reviewer's decision sets it)
                    self.observer.record_decided("dukcapil", band, link.probability, None)
            report_sectoral(self.observer, links)
        return links

    def upsert_master(self, person: MasterPerson) -> None:
        """Insert or replace a master person (master updates); its sectoral ids are kept."""
        old = self.master.get(person.nik)
        self.master[person.nik] = FakeMasterPerson(
            person.nik,
            person.full_name,
            person.kk_number,
            person.deceased,
            old.dtks_id if old else None,
            old.bpjs_id if old else None,
            old.dtks_decile if old else None,
            person.birth_date,
        )

    def master_keys(self, person: MasterPerson) -> tuple[int, ...]:
        """A master person's blocking-key hashes (see `fake_blocking_keys`)."""
        return fake_blocking_keys(person.nik, person.full_name, _year(person.birth_date))

    def set_sectoral(self, source: SectoralSource, nik: str, sectoral_id: str, decile: int | None = None) -> None:
        """Record a DTKS (with its decile) or BPJS id for a master person (ignored for an unknown NIK)."""
        old = self.master.get(nik)
        if old is not None:
            changed = (
                replace(old, dtks_id=sectoral_id, dtks_decile=decile)
                if source == "dtks"
                else replace(old, bpjs_id=sectoral_id)
            )
            self.master[nik] = changed

    def _one(self, query: MemberQuery, by_sound: dict[int, list[FakeMasterPerson]]) -> MemberLink:
        year = query.birth_year if query.birth_year is not None else _year(query.birth_date)
        keys = fake_blocking_keys(query.nik, query.full_name, year)
        person = self.master.get(query.nik) if query.nik else None
        if person is None:
            sound = fake_blocking_keys(None, query.full_name, year)
            alike = by_sound.get(sound[0], []) if sound else []
            if len(alike) != 1:
                return MemberLink(query.record_id, "no_match", None, None, None, None, blocking_keys=keys)
            (person,) = alike
            return self._link(query, person, "auto_link", 0.95, 6.5, {"nik": 0.0, "full_name": 6.5}, keys)
        same_name = person.full_name.casefold() == query.full_name.casefold()
        if same_name:
            return self._link(query, person, "auto_link", 0.999, 12.5, {"nik": 10.0, "full_name": 2.5}, keys)
        link = self._link(query, person, "review", 0.6, 1.25, {"nik": 10.0, "full_name": -8.75}, keys)
        if not self.rank_candidates:
            return link
        name_code = fake_sound(person.full_name)
        niks = sorted(
            p.nik for p in self.master.values() if p.nik != person.nik and fake_sound(p.full_name) == name_code
        )
        others = tuple(RankedCandidate(nik, 0.25, -1.5, {"nik": -10.0, "full_name": 8.5}) for nik in niks)
        first = RankedCandidate(person.nik, link.probability, link.match_weight, dict(link.explanation))
        return replace(link, candidates=(first, *others))

    @staticmethod
    def _link(
        query: MemberQuery,
        person: FakeMasterPerson,
        band: Band,
        probability: float,
        weight: float,
        explanation: dict[str, float],
        keys: tuple[int, ...],
    ) -> MemberLink:
        return MemberLink(
            record_id=query.record_id,
            band=band,
            master_nik=person.nik,
            probability=probability,
            match_weight=weight,
            runner_up_weight=-3.0,
            explanation=explanation,
            master_kk_number=person.kk_number,
            master_deceased=person.deceased,
            dtks_id=person.dtks_id,
            bpjs_id=person.bpjs_id,
            dtks_decile=person.dtks_decile,
            blocking_keys=keys,
        )


FAMILY_KEY = "3603010001000100001001"


def nik_for(serial: int, *, day: int = 15, month: int = 5, yy: int = 80, female: bool = False) -> str:
    """A structurally valid NIK in Kab. Tangerang (district 360312) with the given date part."""
    return f"360312{day + 40 if female else day:02d}{month:02d}{yy:02d}{serial:04d}"


def member_payload(
    serial: int,
    name: str,
    nik: str | None,
    *,
    presence: int = 1,
    sex: int | None = 1,
    relationship: int = 1,
    birth: tuple[int | None, int | None, int | None] = (15, 5, 1980),
) -> dict[str, object]:
    """One member as JSON-ready data (FamilySubmission v1 shape)."""
    day, month, year = birth
    return {
        "serial": serial,
        "name": name,
        "nik": nik,
        "presence": presence,
        "sex": sex,
        "birth_date": {"day": day, "month": month, "year": year},
        "age": 42,
        "marital_status": 2,
        "relationship": relationship,
    }


def submission_payload(
    members: list[dict[str, object]],
    *,
    family_key: str = FAMILY_KEY,
    revision: int = 1,
    kk_number: str | None = "3603121705150003",
) -> dict[str, object]:
    """A valid FamilySubmission v1 document (a dict; `json.dumps` it for the wire)."""
    k = family_key
    return {
        "schema_version": "1",
        "submission_id": f"S-{k}-r{revision}",
        "revision": revision,
        "enumerator_code": "E3603010001",
        "enumerated_at": "2022-10-20T09:15:00+07:00",
        "family_key": {
            "province": k[0:2],
            "regency": k[2:4],
            "district": k[4:7],
            "village": k[7:10],
            "sls": k[10:14],
            "sub_sls": k[14:16],
            "building_serial": k[16:19],
            "family_serial": k[19:22],
        },
        "address": {"street": "Jl. Melati No. 12", "rt": "002", "rw": "005"},
        "kk_number": kk_number,
        "kk_code": 0,
        "head_name": str(members[0]["name"]) if members else "Ahmad Fauzi",
        "member_count": len(members),
        "members": members,
    }


@dataclass
class FakeMessage:
    """The parts of a faust message the linker's handlers read (topic, position, timestamp, key, value,
    headers: (name, bytes) pairs, e.g. the gateway's team header)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FakeEvent:
    """A faust event stand-in: the handlers only look at `.message`."""

    message: FakeMessage


# A small example world of the linker service tests: three families and their master persons.
KK = "3603121705150003"
FAM_A, FAM_B, FAM_C = "3603010001000100001001", "3603010001000100002001", "3603020003000200001001"
MASTER = [
    FakeMasterPerson(nik_for(11), "Ahmad Fauzi", KK, dtks_id="DTKS-11"),
    FakeMasterPerson(nik_for(12, female=True), "Siti Aminah", KK),
    FakeMasterPerson(nik_for(21), "Joko Susilo", "3603121705150021", deceased=True),
    FakeMasterPerson(nik_for(31, female=True), "Dewi Lestari", "3603121705150031", bpjs_id="0000000000031"),
]


def family_a(revision: int) -> dict[str, object]:
    """Family A at `revision` (1: three members, the child not in the master; 2: the child dropped)."""
    members = [
        member_payload(1, "Ahmad Fauzi", nik_for(11)),
        member_payload(2, "Sity Aminah", nik_for(12, female=True), sex=2, relationship=2),  # -> review
    ]
    if revision == 1:  # revision 2 drops the child, who is not in the master
        members.append(member_payload(3, "Rizky", None, relationship=3, birth=(None, None, 2015)))
    return submission_payload(members, family_key=FAM_A, revision=revision, kk_number=KK)


def family_b() -> dict[str, object]:
    """Family B: one member, deceased in the master."""
    return submission_payload([member_payload(1, "Joko Susilo", nik_for(21))], family_key=FAM_B, kk_number=KK)


def family_c() -> dict[str, object]:
    """Family C: one member, without a KK number."""
    members = [member_payload(1, "Dewi Lestari", nik_for(31, female=True), sex=2)]
    return submission_payload(members, family_key=FAM_C, kk_number=None)


def raw_json(doc: dict[str, object]) -> bytes:
    """`doc` as the JSON bytes a device sends."""
    return json.dumps(doc).encode()
