"""The master-writing side of the linker's engine port, and contract records -> its master persons.

`MasterWriter` is what the update applier needs besides `MemberLinker.link`: upsert one master person
(incrementally: no reload) and record a sectoral id (and DTKS welfare decile) for a NIK. `FakeMemberLinker` (tests) and
`EngineMemberLinker` (the real engine: `engine.master.upsert` plus overlays of its NIK lookups)
implement it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from contracts.population import PopulationRecord
from linkage.normalise.address import household_address

SectoralSource = Literal["dtks", "bpjs"]


@dataclass(frozen=True)
class MasterPerson:
    """One master person as the engine and the outputs need it (`birth_date` ISO)."""

    nik: str
    kk_number: str
    full_name: str
    sex: str
    birth_date: str
    village_code: str
    address: str
    deceased: bool


class MasterWriter(Protocol):
    """Incremental master and sectoral updates of a `MemberLinker`."""

    def upsert_master(self, person: MasterPerson) -> None: ...

    def set_sectoral(self, source: SectoralSource, nik: str, sectoral_id: str, decile: int | None = None) -> None:
        """Record a sectoral id for a master NIK (with the row's welfare decile for DTKS)."""
        ...


def master_person(record: PopulationRecord) -> MasterPerson:
    """The master person a population change's record describes (RT/RW joined to the street line, as the
    batch master's `population_records` does)."""
    return MasterPerson(
        nik=record.nik,
        kk_number=record.kk_number,
        full_name=record.full_name,
        sex=record.sex,
        birth_date=record.birth_date.isoformat(),
        village_code=record.village_code,
        address=household_address(record.address, record.rt, record.rw) or "",
        deceased=record.status == "dead",
    )
