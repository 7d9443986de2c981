"""Indonesian normalisation: names, phonetic keys, NIK consistency, dates, prepared records."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from linkage.comparisons import PREPARED_COLUMNS
from linkage.normalise import prepare_record, prepare_table
from linkage.normalise.dates import is_placeholder, parse_date, swapped
from linkage.normalise.names import normalise_name, phonetic_key
from linkage.normalise.nik import clean_nik, nik_consistency
from linkage.normalise.regions import Crosswalk


@pytest.mark.parametrize(
    ("raw", "name_norm"),
    [
        ("H. Ahmad Fauzi, S.Pd.", "AHMAD FAUZI"),
        ("Hj. Sity Aminah", "SITI AMINAH"),
        ("Drs. H. Mochammad  Rizki", "MUHAMMAD RIZKI"),
        ("M. Rizki", "MUHAMMAD RIZKI"),
        ("Moh.Rizki", "MUHAMMAD RIZKI"),
        ("Muh. Rizki", "MUHAMMAD RIZKI"),
        ("muhamad   rizki ", "MUHAMMAD RIZKI"),
        ("Ir. Budi Santoso S.T.", "BUDI SANTOSO"),
        ("Tgk. Achmad Chairul", "AHMAD KHAIRUL"),
        ("dr. Dewi Lestari, M.Kes", "DEWI LESTARI"),
        ("Ma'ruf Amin", "MARUF AMIN"),
        ("Soekarno", "SUKARNO"),
        ("Djoko Tjahjono", "JOKO CAHJONO"),
        ("Nur-Aini", "NUR AINI"),
        ("", None),
        ("  , ", None),
    ],
)
def test_name_normalisation(raw: str, name_norm: str | None) -> None:
    assert normalise_name(raw).name_norm == name_norm


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Wa Nasia", "Wanasia"),
        ("Siti Nurhayati", "Sity Nurhayaty"),
        ("Achmad Chairul", "Ahmad Khairul"),
        ("Fitri Handayani", "Pitri Handayani"),
        ("Zainal Abidin", "Jainal Abidin"),
        ("Mohammad Yusuf", "Muhamad Jusuf"),
    ],
)
def test_phonetic_key_equal_for_variants(a: str, b: str) -> None:
    assert normalise_name(a).name_key == normalise_name(b).name_key


def test_phonetic_key_separates_different_names() -> None:
    assert phonetic_key("BUDI") != phonetic_key("BAYU")
    assert phonetic_key("SUKARNO") == "SKRN"
    assert phonetic_key("") is None


def test_given_name_skips_weak_leading_tokens() -> None:
    parts = normalise_name("Muhammad Rizki Pratama")
    assert (parts.given_name, parts.other_names, parts.given_name_key) == ("RIZKI", "MUHAMMAD PRATAMA", "RJK")
    single = normalise_name("Siti")
    assert (single.given_name, single.other_names) == ("SITI", None)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("3603121505800002", "3603121505800002"),
        ("3603 1215 0580 0002", "3603121505800002"),
        ("1000000000000000", None),
        ("9999999999999999", None),
        ("3603121505800000", None),
        ("360312150580000", None),
        (None, None),
    ],
)
def test_clean_nik(raw: str | None, clean: str | None) -> None:
    assert clean_nik(raw) == clean


@pytest.mark.parametrize(
    ("nik", "dob", "year", "sex", "expected"),
    [
        ("3603121505800002", date(1980, 5, 15), None, "M", "Y"),
        ("3603125505800002", date(1980, 5, 15), None, "F", "Y"),  # women: day + 40
        ("3603125505800002", date(1980, 5, 15), None, "M", "N"),  # sex disagrees
        ("3603121505800002", date(1982, 5, 15), None, "M", "N"),  # a relative's NIK
        ("3603121505800002", None, 1980, None, "Y"),  # year only
        ("3603121505800002", None, 1981, None, "N"),
        ("3603121505800002", None, None, None, None),
        (None, date(1980, 5, 15), None, "M", None),
    ],
)
def test_nik_consistency(
    nik: str | None, dob: date | None, year: int | None, sex: str | None, expected: str | None
) -> None:
    assert nik_consistency(nik, dob, year, sex) == expected


def test_dates() -> None:
    assert parse_date("1980-05-15") == date(1980, 5, 15)
    assert parse_date("") is None and parse_date("1980-02-31") is None and parse_date(None) is None
    assert swapped(date(1980, 5, 12)) == date(1980, 12, 5)
    assert swapped(date(1980, 5, 5)) is None and swapped(date(1980, 5, 15)) is None
    assert is_placeholder(date(1990, 7, 1)) and is_placeholder(date(1990, 12, 31))
    assert not is_placeholder(date(1990, 1, 7))


def test_prepare_record_placeholder_and_swap() -> None:
    placeholder = prepare_record({"record_id": "r1", "full_name": "Budi", "birth_date": "1990-07-01"})
    assert placeholder["birth_date"] == "1990-07-01"
    assert placeholder["birth_date_real"] is None
    assert placeholder["birth_date_swapped"] == "1990-01-07"
    assert placeholder["birth_year"] == 1990


def test_prepare_record_empty_strings_become_null() -> None:
    row = prepare_record(
        {
            "record_id": "r2",
            "nik": "",
            "kk_number": "",
            "full_name": "",
            "sex": "",
            "birth_date": "",
            "birth_year": "1977",
            "village_code": "",
        }
    )
    assert row["birth_year"] == 1977
    assert all(row[c] is None for c in PREPARED_COLUMNS if c not in ("record_id", "birth_year"))


def test_prepare_table_keeps_schema_and_extra_columns() -> None:
    table = pa.table(
        {
            "record_id": ["a"],
            "nik": ["3603125505800002"],
            "full_name": ["Sity Aminah"],
            "sex": ["P"],
            "birth_date": ["1980-05-15"],
            "village_code": ["36.03.12.2001"],
            "family_key": ["k1"],
        }
    )
    out = prepare_table(table, keep=["family_key"])
    assert out.column_names == [*PREPARED_COLUMNS, "family_key"]
    row = out.to_pylist()[0]
    assert (row["sex"], row["nik_consistent"], row["village_code"], row["district_code"]) == (
        "F",
        "Y",
        "3603122001",
        "360312",
    )


def test_crosswalk_maps_bps_to_kemendagri() -> None:
    cw = Crosswalk(
        [
            {"level": "village", "bps_code": "3603010001", "kemendagri_code": "3603122001"},
            {"level": "district", "bps_code": "3603010", "kemendagri_code": "360312"},
        ]
    )
    assert cw.village("3603010001") == "3603122001"
    assert cw.district("3603010") == "360312"
    assert cw.village("3603010999") is None
