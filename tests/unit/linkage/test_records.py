"""Source rows -> linkage records (survey members: tests/unit/test_member_mapping.py)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from linkage.records import LINKAGE_COLUMNS, bpjs_records, dtks_records, population_records


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
