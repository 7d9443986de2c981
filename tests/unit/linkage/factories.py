"""A tiny hand-made world for the linkage tests: a master and noisy copies with a known answer."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pyarrow as pa

from linkage.records import LINKAGE_SCHEMA

GIVEN_M = [
    "Ahmad",
    "Budi",
    "Rizki",
    "Joko",
    "Agus",
    "Dedi",
    "Hendra",
    "Yusuf",
    "Bambang",
    "Eko",
    "Fajar",
    "Irwan",
    "Slamet",
    "Wahyu",
    "Andi",
    "Arif",
    "Teguh",
    "Rudi",
    "Dimas",
    "Hadi",
]
GIVEN_F = [
    "Siti",
    "Dewi",
    "Sri",
    "Nur",
    "Rina",
    "Wati",
    "Yuni",
    "Lestari",
    "Ani",
    "Fitri",
    "Ratna",
    "Indah",
    "Ayu",
    "Putri",
    "Rahma",
    "Lina",
    "Tuti",
    "Endang",
    "Maya",
    "Novi",
]
FAMILY = [
    "Santoso",
    "Wijaya",
    "Saputra",
    "Hidayat",
    "Pratama",
    "Kurniawan",
    "Setiawan",
    "Susanto",
    "Rahman",
    "Gunawan",
    "Nugroho",
    "Hakim",
    "Purnomo",
    "Aminah",
    "Handayani",
    "Rahayu",
    "",
]
VILLAGES = [f"360312{2000 + i}" for i in range(1, 9)]


def _nik(rnd: random.Random, dob: date, sex: str) -> str:
    day = dob.day + (40 if sex == "F" else 0)
    return f"360312{day:02d}{dob.month:02d}{dob.year % 100:02d}{rnd.randint(1, 9999):04d}"


def make_master(persons: int = 400, seed: int = 7) -> pa.Table:
    """`persons` master rows in families of 1-5 sharing a KK number and a village."""
    rnd = random.Random(seed)
    rows: list[dict[str, object]] = []
    niks: set[str] = set()
    family = 0
    while len(rows) < persons:
        family += 1
        kk = f"3603120101{family:06d}"
        village = rnd.choice(VILLAGES)
        for _ in range(rnd.randint(1, 5)):
            sex = rnd.choice("MF")
            dob = date(1940, 1, 1) + timedelta(days=rnd.randint(0, 80 * 365))
            nik = _nik(rnd, dob, sex)
            if nik in niks:
                continue
            niks.add(nik)
            name = f"{rnd.choice(GIVEN_M if sex == 'M' else GIVEN_F)} {rnd.choice(FAMILY)}".strip()
            rows.append(
                {
                    "record_id": nik,
                    "nik": nik,
                    "kk_number": kk,
                    "full_name": name,
                    "sex": sex,
                    "birth_date": dob.isoformat(),
                    "birth_year": dob.year,
                    "village_code": village,
                    "address": f"Jl. Melati No. {family}",
                }
            )
    return pa.Table.from_pylist(rows[:persons], schema=LINKAGE_SCHEMA)


def make_records(master: pa.Table, share: float = 0.6, seed: int = 11) -> tuple[pa.Table, dict[str, str]]:
    """Noisy copies of a share of the master; returns (records, record_id -> true master id)."""
    rnd = random.Random(seed)
    out: list[dict[str, object]] = []
    truth: dict[str, str] = {}
    for i, row in enumerate(master.to_pylist()):
        if rnd.random() > share:
            continue
        rec = dict(row)
        rec["record_id"] = f"R{i:05d}"
        noise = rnd.random()
        if noise < 0.15:
            rec["nik"] = None
        elif noise < 0.25:
            rec["full_name"] = "H. " + str(rec["full_name"]).upper()
        elif noise < 0.35:
            d = date.fromisoformat(str(rec["birth_date"]))
            if d.day <= 12:
                rec["birth_date"] = date(d.year, d.day, d.month).isoformat()
        elif noise < 0.4:
            rec["birth_date"] = None
        elif noise < 0.45:
            rec["sex"] = None
        truth[str(rec["record_id"])] = str(row["record_id"])
        out.append(rec)
    return pa.Table.from_pylist(out, schema=LINKAGE_SCHEMA), truth
