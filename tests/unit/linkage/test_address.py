"""Indonesian address lines -> place, RT, RW and household key (linkage.normalise.address)."""

from __future__ import annotations

import pytest

from linkage.normalise.address import household_address, normalise_address
from linkage.normalise.prepare import prepare_record


@pytest.mark.parametrize(
    ("raw", "place", "rt", "rw"),
    [
        # RT/RW in every common form
        ("Kp. Sukamaju RT 3 RW 9", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju RT.003/RW.009", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju RT 003 / RW 009", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju 003/009", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju Rt03 Rw09", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju RT/RW 003/009", "SUKAMAJU", "3", "9"),
        ("Kp. Sukamaju RT 003/009", "SUKAMAJU", "3", "9"),
        ("kp sukamaju rt 3/ rw 9", "SUKAMAJU", "3", "9"),
        ("RT.003/RW.009 Kp Sukamaju", "SUKAMAJU", "3", "9"),
        # prefixes in their spellings and abbreviations
        ("Kmp. Sukamaju RT 1 RW 2", "SUKAMAJU", "1", "2"),
        ("KAMPUNG SUKAMAJU RT 1 RW 2", "SUKAMAJU", "1", "2"),
        ("Dsn. Krajan RT 004 RW 001", "KRAJAN", "4", "1"),
        ("Dusun Krajan RT 4 RW 1", "KRAJAN", "4", "1"),
        ("Jl. Melati No. 12 RT 002 RW 005", "MELATI", "2", "5"),
        ("Jln. Melati No.12 RT 2 RW 5", "MELATI", "2", "5"),
        ("JALAN MELATI NO 12A, RT 02/05", "MELATI", "2", "5"),
        ("Jl.Melati No.5/2", "MELATI", None, None),
        ("Gg. Mawar RT 01 RW 02", "MAWAR", "1", "2"),
        ("Gang Mawar Rt 1 Rw 2", "MAWAR", "1", "2"),
        ("Perum Griya Asri Blok C2 No. 5 RT 3 RW 12", "GRIYA ASRI", "3", "12"),
        ("Perumahan Griya Asri Blk. C2 No 5 RT 003 RW 012", "GRIYA ASRI", "3", "12"),
        # desa/kelurahan, kecamatan and kabupaten parts do not make the place
        ("Kp. Sukamaju RT 3 RW 9 Desa Cibadak Kec. Cikupa Kab. Tangerang", "SUKAMAJU", "3", "9"),
        ("Gang Mawar RT 01 RW 02 Kel. Sukasari", "MAWAR", "1", "2"),
        ("Desa Sukamaju RT 003 RW 009", "SUKAMAJU", "3", "9"),
        ("Ds. Sukamaju 003/009", "SUKAMAJU", "3", "9"),
        ("Kelurahan Sukasari", "SUKASARI", None, None),
        # a prefix word used as a name
        ("Kp. Dukuh RT 1 RW 1", "DUKUH", "1", "1"),
        ("Jl. Kampung Baru No. 3", "KAMPUNG BARU", None, None),
        # a street name without a prefix word
        ("Melati 12 RT 2 RW 5", "MELATI 12", "2", "5"),
        # missing parts, zeros, empties
        ("Kp. Sukamaju RT 3", "SUKAMAJU", "3", None),
        ("RT 003 RW 009", None, "3", "9"),
        ("Kp. Sukamaju RT 000 RW 000", "SUKAMAJU", None, None),
        ("  ", None, None, None),
        ("Kp. Sukamaju  ,  RT  3  RW  9 ", "SUKAMAJU", "3", "9"),
    ],
)
def test_address_parts(raw: str, place: str | None, rt: str | None, rw: str | None) -> None:
    parts = normalise_address(raw)
    assert (parts.addr_place, parts.addr_rt, parts.addr_rw) == (place, rt, rw)
    expected_key = f"{place}|{rt}|{rw}" if place and rt and rw else None
    assert parts.household_key == expected_key


def test_the_same_household_written_five_ways_has_one_key() -> None:
    ways = [
        "Kp. Sukamaju RT 003 RW 009",
        "KAMPUNG SUKAMAJU RT.3/RW.9",
        "Kmp Sukamaju, Rt03 Rw09",
        "kp. sukamaju 003/009",
        "Kp Sukamaju RT/RW 003/009",
    ]
    assert {normalise_address(w).household_key for w in ways} == {"SUKAMAJU|3|9"}


def test_household_address_joins_street_and_separate_rt_rw() -> None:
    assert household_address("Kp. Sukamaju", "003", "009") == "Kp. Sukamaju RT 003 RW 009"
    assert household_address("Jl. Melati No. 5", None, "2") == "Jl. Melati No. 5 RW 2"
    assert household_address(None, "001", "") == "RT 001"
    assert household_address(None, None, None) is None
    assert household_address("", " ", None) is None


def test_prepare_record_carries_the_address_columns() -> None:
    row = prepare_record({"record_id": "1", "address": "Jln. Melati No. 12 RT.002/RW.005"})
    columns = ("addr_place", "addr_rt", "addr_rw", "household_key")
    assert tuple(row[c] for c in columns) == ("MELATI", "2", "5", "MELATI|2|5")
    empty = prepare_record({"record_id": "2"})
    assert tuple(empty[c] for c in columns) == (None, None, None, None)


@pytest.mark.parametrize(
    ("raw", "name_sorted", "name_initials"),
    [
        ("Sumiati Salsabila Nasution", "NASUTION SALSABILA SUMIATI", "S S NASUTION"),
        ("Nasution, Sumiati", "NASUTION", None),  # what precedes a comma is the name (degrees follow it)
        ("A. Rahman", "A RAHMAN", "A RAHMAN"),
        ("Abdul Rahman", "ABDUL RAHMAN", "A RAHMAN"),
        ("M. Rizki", "MUHAMMAD RIZKI", "M RIZKI"),
        ("Agus", "AGUS", None),
    ],
)
def test_token_columns(raw: str, name_sorted: str, name_initials: str | None) -> None:
    row = prepare_record({"record_id": "1", "full_name": raw})
    assert (row["name_sorted"], row["name_initials"]) == (name_sorted, name_initials)


@pytest.mark.parametrize(
    ("raw", "day_month"),
    [("1980-05-15", "05-15"), ("1980-07-01", None), ("1980-12-31", None), (None, None), ("1980-02-30", None)],
)
def test_birth_day_month_skips_placeholders_and_invalid_dates(raw: str | None, day_month: str | None) -> None:
    assert prepare_record({"record_id": "1", "birth_date": raw})["birth_day_month"] == day_month
