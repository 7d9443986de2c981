"""Hand-written FamilySubmission v1 payloads for the broker round-trip tests (docs/data-model.md shape)."""

from __future__ import annotations

import copy
import json
from typing import Any

from contracts.submission import FamilySubmission

_BASE: dict[str, Any] = {
    "schema_version": "1",
    "submission_id": "S-3603-0000001-r1",
    "revision": 1,
    "enumerator_code": "E3603010001",
    "enumerated_at": "2022-10-20T09:15:00+07:00",
    "family_key": {
        "province": "36",
        "regency": "03",
        "district": "010",
        "village": "001",
        "sls": "0001",
        "sub_sls": "00",
        "building_serial": "001",
        "family_serial": "001",
    },
    "address": {"street": "Jl. Melati No. 12", "rt": "002", "rw": "005"},
    "kk_number": "3603121705150003",
    "kk_code": 0,
    "head_name": "Ahmad Fauzi",
    "member_count": 2,
    "housing": {
        "tenure": 1,
        "floor_area_m2": 36,
        "floor_material": 2,
        "wall_material": 1,
        "roof_material": 2,
        "water_source": 3,
        "electricity": 1,
        "cooking_fuel": 2,
        "toilet": 1,
    },
    "programmes": {
        "sembako": False,
        "pkh": True,
        "blt_dana_desa": False,
        "electricity_subsidy": True,
        "regional_aid": False,
    },
    "assets": {
        "refrigerator": True,
        "motorcycle": True,
        "car": False,
        "smartphone": True,
        "land_owned": False,
        "internet_access": True,
        "bank_account": False,
    },
    "members": [
        {
            "serial": 1,
            "name": "Ahmad Fauzi",
            "nik": "3603121505800002",
            "presence": 1,
            "sex": 1,
            "birth_date": {"day": 15, "month": 5, "year": 1980},
            "age": 42,
            "marital_status": 2,
            "relationship": 1,
            "education": {"school_participation": 3, "highest_level": 5},
            "work": {"worked_last_week": True, "main_sector": 1, "employment_status": 3},
            "disability": {"seeing": 1, "hearing": 1, "walking": 1},
            "insurance": {"bpjs_pbi": True, "bpjs_non_pbi": False, "pip": False},
        },
        {
            "serial": 2,
            "name": "Siti Aminah",
            "nik": None,
            "presence": 1,
            "sex": 2,
            "birth_date": {"day": None, "month": None, "year": 1984},
            "age": 38,
            "marital_status": 2,
            "relationship": 2,
        },
    ],
}


def submission_dict(family_serial: int = 1, revision: int = 1, **changes: Any) -> dict[str, Any]:
    """A valid submission as a plain dict, for family `family_serial` and the given revision."""
    data = copy.deepcopy(_BASE)
    data["family_key"]["family_serial"] = f"{family_serial:03d}"
    data["submission_id"] = f"S-3603-{family_serial:07d}-r{revision}"
    data["revision"] = revision
    data.update(changes)
    return data


def submission(family_serial: int = 1, revision: int = 1, **changes: Any) -> FamilySubmission:
    """A valid FamilySubmission model."""
    return FamilySubmission.model_validate(submission_dict(family_serial, revision, **changes))


def raw(data: dict[str, Any]) -> bytes:
    """JSON bytes of a (possibly invalid) submission dict."""
    return json.dumps(data).encode()
