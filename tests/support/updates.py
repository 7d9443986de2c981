"""Builders of change records for the updates' tests (unit and integration share them)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from contracts.linkage_outputs import LinkedMember
from contracts.linkage_updates import (
    ChangeSource,
    LinkChanged,
    UpdateCause,
    UpdateEventType,
    summary_of,
    update_event_id,
)
from tests.support.linker import nik_for

#: A valid Kemendagri village in Kab. Tangerang district 360312 (the district of `nik_for`).
VILLAGE = "3603122001"


def population_change(
    change: str,
    change_id: str,
    nik: str,
    name: str,
    *,
    kk_number: str = "3603121705150003",
    sex: str = "M",
    birth_date: dt.date | None = None,
    status: str = "alive",
    village_code: str = VILLAGE,
    extra: dict[str, object] | None = None,
) -> bytes:
    """One `dukcapil.population.changes.v1` value (PopulationChange v1 JSON)."""
    if birth_date is None:  # the date part of the NIK (`nik_for` builds them)
        day = int(nik[6:8]) - (40 if sex == "F" else 0)
        yy = int(nik[10:12])
        birth_date = dt.date(1900 + yy if yy > 30 else 2000 + yy, int(nik[8:10]), day)
    record = {
        "nik": nik,
        "kk_number": kk_number,
        "full_name": name,
        "sex": sex,
        "birth_date": birth_date.isoformat(),
        "village_code": village_code,
        "district_code": village_code[:6],
        "address": "Jl. Melati No. 12",
        "status": status,
    }
    doc: dict[str, object] = {
        "schema_version": "1",
        "change": change,
        "change_id": change_id,
        "effective_date": "2023-01-10",
        "record": record,
        **(extra or {}),
    }
    return json.dumps(doc, sort_keys=True).encode("utf-8")


def dtks_row(id_dtks: str, nik: str | None, name: str, desil: int = 2) -> bytes:
    """One `sectoral.dtks.changes.v1` value (DtksRecord v1 JSON) with welfare decile `desil`."""
    doc = {
        "source": "dtks",
        "schema_version": "1",
        "id_dtks": id_dtks,
        "nik": nik,
        "nama": name,
        "kode_desa": VILLAGE,
        "id_keluarga": "K-1",
        "desil": desil,
    }
    return json.dumps(doc, sort_keys=True).encode("utf-8")


__all__ = ["VILLAGE", "dtks_row", "link_changed_update", "nik_for", "population_change"]


def link_changed_update(before: LinkedMember, after: LinkedMember, change_id: str = "c-test") -> LinkChanged:
    """A `link_changed` event (as on `linkage.updates.v1`) from a member's record before and after."""
    cause = UpdateCause(source=ChangeSource.DUKCAPIL, change="corrected", change_id=change_id)
    return LinkChanged(
        event_id=update_event_id(change_id, after.member_key, UpdateEventType.LINK_CHANGED),
        member_key=after.member_key,
        family_key=after.family_key,
        cause=cause,
        before=summary_of(before),
        after=summary_of(after),
        member=after,
    )


def change_record(change: str, change_id: str, row: dict[str, Any], **record: Any) -> bytes:
    rec = {k: row[k] for k in ("nik", "kk_number", "full_name", "sex", "village_code", "district_code", "address")}
    rec.update({"birth_date": row["birth_date"].isoformat(), "status": row["status"], **record})
    doc = {
        "schema_version": "1",
        "change": change,
        "change_id": change_id,
        "effective_date": "2023-02-01",
        "record": rec,
    }
    return json.dumps(doc, sort_keys=True).encode()
