"""The generated world: determinism, the master's NIK/KK/name rules, the crosswalk, truth coverage."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import lokal
import pyarrow.parquet as pq
import pytest

from synthetic import NoiseProfile, UnknownRegencyError, World, generate_world
from synthetic.names import FEMALE_FIRST, MALE_FIRST, first_given_name
from synthetic.regions import load_regency, neighbour_district_codes

FILES = (
    "population.parquet",
    "crosswalk.parquet",
    "dtks.parquet",
    "bpjs.parquet",
    "submissions.jsonl",
    "truth.parquet",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return generate_world(tmp_path_factory.mktemp("world"), persons=8000, seed=11)


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a = generate_world(tmp_path / "a", persons=1500, seed=3)
    b = generate_world(tmp_path / "b", persons=1500, seed=3)
    c = generate_world(tmp_path / "c", persons=1500, seed=4)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert a.persons == b.persons == c.persons == 1500
    assert _digests(tmp_path / "a")["population.parquet"] != _digests(tmp_path / "c")["population.parquet"]


def test_population_has_exactly_the_requested_persons_and_documented_columns(world: World) -> None:
    table = pq.read_table(world.population)
    assert table.num_rows == world.persons == 8000
    assert table.column_names == [
        "nik",
        "kk_number",
        "full_name",
        "sex",
        "birth_place",
        "birth_date",
        "religion",
        "marital_status",
        "relationship",
        "village_code",
        "district_code",
        "address",
        "rt",
        "rw",
        "status",
        "moved_out",
    ]
    rows = table.to_pylist()
    assert {r["sex"] for r in rows} == {"M", "F"}
    assert {r["status"] for r in rows} == {"alive", "dead"}
    assert any(r["moved_out"] for r in rows)
    assert all(len(r["rt"]) == 3 and len(r["rw"]) == 3 for r in rows)
    assert all(r["village_code"].startswith(r["district_code"]) for r in rows)
    assert {r["relationship"] for r in rows} == {
        "KEPALA KELUARGA",
        "ISTRI",
        "ANAK",
        "ORANG TUA",
        "MERTUA",
        "CUCU",
        "FAMILI LAIN",
    }
    assert {r["marital_status"] for r in rows} == {"BELUM KAWIN", "KAWIN", "CERAI HIDUP", "CERAI MATI"}
    # Some older people already carry a placeholder birth date (1 July / 31 December) in the master.
    old = [r["birth_date"] for r in rows if r["birth_date"].year < 1970]
    placeholders = sum((b.day, b.month) in {(1, 7), (31, 12)} for b in old) / len(old)
    assert 0.015 < placeholders < 0.06


def test_niks_are_valid_unique_and_agree_with_sex_birth_date_and_district(world: World) -> None:
    rows = pq.read_table(world.population).to_pylist()
    niks = [r["nik"] for r in rows]
    assert len(set(niks)) == len(niks)
    regency = load_regency("3603")
    allowed = {d.kemendagri_code for d in regency.districts} | set(neighbour_district_codes(regency))
    born_here = 0
    for r in rows:
        nik, birth = r["nik"], r["birth_date"]
        assert lokal.parse_nik(nik).valid, "structurally invalid NIK in the master"
        day = int(nik[6:8])
        assert (day > 40) == (r["sex"] == "F")
        assert (day - 40 if day > 40 else day, int(nik[8:10]), int(nik[10:12])) == (
            birth.day,
            birth.month,
            birth.year % 100,
        )
        assert nik[:6] in allowed
        born_here += nik[:6] == r["district_code"]
        assert nik[12:] != "0000"
    assert born_here / len(rows) > 0.8  # most people were first registered where they live


def test_kk_numbers_group_families_with_one_head_each(world: World) -> None:
    rows = pq.read_table(world.population).to_pylist()
    heads: dict[str, int] = {}
    for r in rows:
        kk = r["kk_number"]
        assert len(kk) == 16 and kk[:6] == r["district_code"] and kk[12:] != "0000"
        dt.date(2000 + int(kk[10:12]), int(kk[8:10]), int(kk[6:8]))  # a real issue date
        heads[kk] = heads.get(kk, 0) + (r["relationship"] == "KEPALA KELUARGA")
    assert set(heads.values()) == {1}
    assert len(heads) == world.families
    sizes = [sum(1 for r in rows if r["kk_number"] == kk) for kk in list(heads)[:500]]
    assert 3.0 < sum(sizes) / len(sizes) < 4.3


def test_names_are_gender_consistent(world: World) -> None:
    rows = pq.read_table(world.population, columns=["full_name", "sex"]).to_pylist()
    male, female = set(MALE_FIRST), set(FEMALE_FIRST)
    for r in rows:
        given = first_given_name(r["full_name"])
        assert given in (female if r["sex"] == "F" else male), "name of the other sex"
        assert not r["full_name"].startswith("Siti") or r["sex"] == "F"
        assert not r["full_name"].startswith("Muhammad") or r["sex"] == "M"
    assert any(r["full_name"].startswith("Muhammad ") for r in rows)
    assert any(r["full_name"].startswith("Siti ") for r in rows)
    assert any(" " not in r["full_name"] for r in rows)  # mononyms


def test_age_pyramid_is_plausible(world: World) -> None:
    births = pq.read_table(world.population, columns=["birth_date"]).column(0).to_pylist()
    ages = [(dt.date(2022, 9, 30) - b).days / 365.25 for b in births]
    share = lambda lo, hi: sum(lo <= a < hi for a in ages) / len(ages)  # noqa: E731
    assert 0.15 < share(0, 10) < 0.27
    assert 0.07 < share(60, 120) < 0.16
    assert max(ages) < 101  # parents are at most 99 in completed years


def test_crosswalk_covers_every_district_and_village_of_the_regency(world: World) -> None:
    rows = pq.read_table(world.crosswalk).to_pylist()
    districts = [r for r in rows if r["level"] == "district"]
    villages = [r for r in rows if r["level"] == "village"]
    assert (len(districts), len(villages)) == (29, 274)
    assert districts[0] == {"level": "district", "bps_code": "3603010", "kemendagri_code": "360301", "name": "Balaraja"}
    assert len({r["bps_code"] for r in villages}) == len({r["kemendagri_code"] for r in villages}) == 274
    assert all(len(r["bps_code"]) == 10 and len(r["kemendagri_code"]) == 10 for r in villages)
    used = set(pq.read_table(world.population, columns=["village_code"]).column(0).to_pylist())
    assert used <= {r["kemendagri_code"] for r in villages}
    bps = {r["bps_code"] for r in villages}
    with world.submissions.open() as fh:
        for line in fh:
            key = json.loads(line)["family_key"]
            assert key["province"] + key["regency"] + key["district"] + key["village"] in bps


def test_truth_covers_every_submitted_member_and_sectoral_row(world: World) -> None:
    truth = pq.read_table(world.truth).to_pylist()
    members = [t for t in truth if t["source"] == "member"]
    assert len(members) == world.member_records
    assert sum(t["source"] == "dtks" for t in truth) == world.dtks_rows
    assert sum(t["source"] == "bpjs" for t in truth) == world.bpjs_rows
    ids: list[str] = []
    keys: set[str] = set()
    with world.submissions.open() as fh:
        for line in fh:
            assert "true_nik" not in line and "noise" not in line
            doc = json.loads(line)
            fk = doc["family_key"]
            family_key = "".join(
                fk[k]
                for k in (
                    "province",
                    "regency",
                    "district",
                    "village",
                    "sls",
                    "sub_sls",
                    "building_serial",
                    "family_serial",
                )
            )
            for m in doc["members"]:
                ids.append(f"{doc['submission_id']}/{m['serial']}")
                keys.add(f"{family_key}-{m['serial']:02d}")
    assert ids == [t["record_id"] for t in members]
    assert {t["member_key"] for t in members} == keys
    master = set(pq.read_table(world.population, columns=["nik"]).column(0).to_pylist())
    assert all(t["true_nik"] is None or t["true_nik"] in master for t in truth)
    assert all((t["true_nik"] is None) == ("not_in_master" in t["noise"].split("|")) for t in truth)


def test_unknown_regency_and_bad_sizes_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownRegencyError, match="9999"):
        generate_world(tmp_path, regency="9999", persons=10, seed=1)
    with pytest.raises(ValueError, match="at least 1"):
        generate_world(tmp_path, persons=0, seed=1)
    with pytest.raises(ValueError, match="nik_missing"):
        NoiseProfile(nik_missing=1.5)


def test_another_regency_uses_its_own_codes(tmp_path: Path) -> None:
    world = generate_world(tmp_path, regency="3171", persons=300, seed=2)  # Jakarta Pusat (kelurahan)
    codes = set(pq.read_table(world.population, columns=["village_code"]).column(0).to_pylist())
    assert all(c.startswith("3171") and c[6] == "1" for c in codes)


def test_sectoral_tables_have_their_own_schemas_and_ids(world: World) -> None:
    villages = {r["kemendagri_code"] for r in pq.read_table(world.crosswalk).to_pylist() if r["level"] == "village"}
    dtks = pq.read_table(world.dtks)
    assert dtks.column_names == [
        "id_dtks",
        "nik",
        "nama",
        "jenis_kelamin",
        "tanggal_lahir",
        "kode_desa",
        "alamat",
        "id_keluarga",
        "desil",
    ]
    rows = dtks.to_pylist()
    assert len({r["id_dtks"] for r in rows}) == len(rows)
    assert {r["jenis_kelamin"] for r in rows} == {"L", "P", None}
    assert {r["desil"] for r in rows} <= set(range(1, 11))
    assert all(r["kode_desa"] in villages and r["nama"] == r["nama"].upper() for r in rows)
    assert all(r["tanggal_lahir"] is None or dt.date.fromisoformat(r["tanggal_lahir"]) for r in rows)
    bpjs = pq.read_table(world.bpjs)
    assert bpjs.column_names == ["noka", "nik", "nama_peserta", "tgl_lahir", "jk", "kd_desa", "segmen", "faskes"]
    rows = bpjs.to_pylist()
    assert len({r["noka"] for r in rows}) == len(rows)
    assert all(len(r["noka"]) == 13 and r["noka"].isdigit() for r in rows)
    assert {r["jk"] for r in rows} == {"1", "2", None}
    assert {r["segmen"] for r in rows} == {"PBI-APBN", "PBI-APBD"}
    assert all(r["kd_desa"] is None or r["kd_desa"] in villages for r in rows)
    # The two databases overlap but neither contains the other.
    truth = pq.read_table(world.truth).to_pylist()
    in_dtks = {t["true_nik"] for t in truth if t["source"] == "dtks" and t["true_nik"]}
    in_bpjs = {t["true_nik"] for t in truth if t["source"] == "bpjs" and t["true_nik"]}
    assert len(in_dtks & in_bpjs) > 0.3 * min(len(in_dtks), len(in_bpjs))
    assert in_dtks - in_bpjs and in_bpjs - in_dtks
