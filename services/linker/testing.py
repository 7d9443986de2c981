"""Test doubles of the linker's port, shipped with the package so unit and integration tests share them.

`FakeMemberLinker` decides by exact NIK lookup in a tiny master: same NIK and same name -> auto_link,
same NIK but another name -> review, otherwise no_match. It records the batch sizes it was called with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from services.linker.port import MemberLink, MemberQuery
from services.updates.master import MasterPerson, SectoralSource


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


@dataclass
class FakeMemberLinker:
    """A deterministic in-memory `MemberLinker`."""

    master: dict[str, FakeMasterPerson] = field(default_factory=dict)
    version: str = "fake-1"
    batch_sizes: list[int] = field(default_factory=list)
    fail_with: Exception | None = None

    @classmethod
    def of(cls, people: Iterable[FakeMasterPerson], version: str = "fake-1") -> FakeMemberLinker:
        """A fake whose master holds `people`."""
        return cls(master={p.nik: p for p in people}, version=version)

    @property
    def model_version(self) -> str:
        return self.version

    def link(self, members: Sequence[MemberQuery]) -> list[MemberLink]:
        """Link by NIK; raises `fail_with` when set (to test infrastructure failures)."""
        if self.fail_with is not None:
            raise self.fail_with
        self.batch_sizes.append(len(members))
        return [self._one(q) for q in members]

    def upsert_master(self, person: MasterPerson) -> None:
        """Insert or replace a master person (master updates); its sectoral ids are kept."""
        old = self.master.get(person.nik)
        self.master[person.nik] = FakeMasterPerson(
            person.nik, person.full_name, person.kk_number, person.deceased,
            old.dtks_id if old else None, old.bpjs_id if old else None, old.dtks_decile if old else None,
        )  # fmt: skip

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

    def _one(self, query: MemberQuery) -> MemberLink:
        person = self.master.get(query.nik) if query.nik else None
        if person is None:
            return MemberLink(query.record_id, "no_match", None, None, None, None)
        same_name = person.full_name.casefold() == query.full_name.casefold()
        return MemberLink(
            record_id=query.record_id,
            band="auto_link" if same_name else "review",
            master_nik=person.nik,
            probability=0.999 if same_name else 0.6,
            match_weight=12.5 if same_name else 1.25,
            runner_up_weight=-3.0,
            explanation={"nik": 10.0, "full_name": 2.5 if same_name else -8.75},
            master_kk_number=person.kk_number,
            master_deceased=person.deceased,
            dtks_id=person.dtks_id,
            bpjs_id=person.bpjs_id,
            dtks_decile=person.dtks_decile,
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
        "serial": serial, "name": name, "nik": nik, "presence": presence, "sex": sex,
        "birth_date": {"day": day, "month": month, "year": year}, "age": 42,
        "marital_status": 2, "relationship": relationship,
    }  # fmt: skip


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
        "family_key": {"province": k[0:2], "regency": k[2:4], "district": k[4:7], "village": k[7:10],
                       "sls": k[10:14], "sub_sls": k[14:16], "building_serial": k[16:19],
                       "family_serial": k[19:22]},
        "address": {"street": "Jl. Melati No. 12", "rt": "002", "rw": "005"},
        "kk_number": kk_number,
        "kk_code": 0,
        "head_name": str(members[0]["name"]) if members else "Ahmad Fauzi",
        "member_count": len(members),
        "members": members,
    }  # fmt: skip


@dataclass
class FakeMessage:
    """The parts of a faust message the linker's handlers read (topic, position, timestamp, key, value)."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


@dataclass
class FakeEvent:
    """A faust event stand-in: the handlers only look at `.message`."""

    message: FakeMessage
