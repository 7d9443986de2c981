"""Source rows -> linkage records."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from linkage.normalise.regions import Crosswalk
from linkage.records import LINKAGE_COLUMNS, bpjs_records, dtks_records, member_records, population_records

SUBMISSION = {
    "submission_id": "S-3603-0000001-r1",
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
    "head_name": "Ahmad Fauzi",
    "members": [
        {
            "serial": 1,
            "name": "Ahmad Fauzi",
            "nik": "3603121505800002",
            "sex": 1,
            "birth_date": {"day": 15, "month": 5, "year": 1980},
            "age": 42,
            "relationship": 1,
        },
        {
            "serial": 2,
            "name": "Siti",
            "nik": None,
            "sex": None,
            "birth_date": {"day": 98, "month": 98, "year": None},
            "age": 40,
            "relationship": 2,
        },
    ],
}


def test_member_records_carry_family_context_and_map_the_village() -> None:
    cw = Crosswalk([{"level": "village", "bps_code": "3603010001", "kemendagri_code": "3603122001"}])
    rows = member_records([SUBMISSION], cw).to_pylist()
    assert rows[0] == {
        "record_id": "S-3603-0000001-r1/1",
        "nik": "3603121505800002",
        "kk_number": "3603121705150003",
        "full_name": "Ahmad Fauzi",
        "sex": "M",
        "birth_date": "1980-05-15",
        "birth_year": 1980,
        "village_code": "3603122001",
        "address": "Jl. Melati No. 12 RT 002 RW 005",  # RT/RW joined to the street line
        "family_key": "3603010001000100001001",
        "head_name": "Ahmad Fauzi",
        "relationship": 1,
        "submission_id": "S-3603-0000001-r1",
    }
    # unknown date parts (98) and unknown year: the year comes from the age (2022 - 40)
    assert (rows[1]["birth_date"], rows[1]["birth_year"], rows[1]["sex"], rows[1]["nik"]) == (None, 1982, None, None)


def test_population_dtks_bpjs_records() -> None:
    pop = population_records(
        pa.table(
            {
                "nik": ["3603121505800002"],
                "kk_number": ["3603121705150003"],
                "full_name": ["Ahmad Fauzi"],
                "sex": ["M"],
                "birth_date": [date(1980, 5, 15)],
                "village_code": ["3603122001"],
                "address": ["Jl. X"],
            }
        )
    ).to_pylist()[0]
    assert (pop["record_id"], pop["birth_date"], pop["birth_year"]) == ("3603121505800002", "1980-05-15", 1980)
    dtks = dtks_records(
        pa.table(
            {
                "id_dtks": ["D1"],
                "nik": [None],
                "nama": ["SITI"],
                "jenis_kelamin": ["P"],
                "tanggal_lahir": [None],
                "kode_desa": ["3603122001"],
                "alamat": ["JL. X"],
                "id_keluarga": ["K1"],
                "desil": [2],
            }
        )
    ).to_pylist()[0]
    assert dtks == {
        "record_id": "D1",
        "nik": None,
        "kk_number": None,
        "full_name": "SITI",
        "sex": "F",
        "birth_date": None,
        "birth_year": None,
        "village_code": "3603122001",
        "address": "JL. X",
    }
    bpjs = bpjs_records(
        pa.table(
            {
                "noka": ["0001"],
                "nik": ["3603121505800002"],
                "nama_peserta": ["AHMAD"],
                "tgl_lahir": [date(1980, 5, 15)],
                "jk": ["1"],
                "kd_desa": [None],
                "segmen": ["PBI-APBN"],
                "faskes": ["F"],
            }
        )
    )
    assert bpjs.column_names == list(LINKAGE_COLUMNS)
    assert bpjs.to_pylist()[0]["sex"] == "M"


def test_world_sources_convert_with_the_generators_record_ids(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from linkage.records import load_world_source
    from synthetic import generate_world

    world = generate_world(tmp_path, persons=300, seed=5)
    truth = pq.read_table(world.truth).to_pylist()
    for source, tag in (("members", "member"), ("dtks", "dtks"), ("bpjs", "bpjs")):
        master, records = load_world_source(str(tmp_path), source)
        assert master.num_rows == 300
        assert master.column("record_id").to_pylist() == master.column("nik").to_pylist()
        ids = records.column("record_id").to_pylist()
        assert sorted(ids) == sorted(r["record_id"] for r in truth if r["source"] == tag)
    members = load_world_source(str(tmp_path), "members")[1]
    villages = members.column("village_code").to_pylist()
    # every survey family's BPS village is in the crosswalk, so every member has a Kemendagri village
    assert all(v is not None and len(v) == 10 for v in villages)
