"""Small hand-made worlds and a Splink reference scorer for the engine's tests.

The world is random but deterministic (seeded): master rows in the linkage-record shape, and query
records that are noisy copies of master rows (typos, swapped dates, missing NIK, variant spelling), plus
strangers and an all-null record. The model is the spec's "members" model with fixed m/u values, so
no training is needed and the weights are known.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import duckdb
import pyarrow as pa

from linkage.comparisons import BLOCKING_RULES, COMPARISONS, render_settings
from linkage.normalise.prepare import PREPARED_SCHEMA, prepare_table

GIVEN = [
    "AHMAD",
    "MUHAMMAD",
    "SITI",
    "NUR",
    "DEWI",
    "SRI",
    "BUDI",
    "AGUS",
    "RINA",
    "WAHYU",
    "EKO",
    "DWI",
    "TRI",
    "YULI",
    "FITRI",
    "ASEP",
    "UJANG",
    "NENG",
    "DEDE",
    "ENDANG",
    "IWAN",
    "HERU",
    "JOKO",
    "SLAMET",
    "SUSI",
    "TUTI",
    "YANTI",
    "ROHMAT",
    "SAEFUL",
    "ENCENG",
    "IDA",
    "LILIS",
]
OTHER = [
    "FAUZI",
    "HIDAYAT",
    "RAHMAN",
    "SETIAWAN",
    "KURNIASIH",
    "PURNAMA",
    "SAPUTRA",
    "LESTARI",
    "WATI",
    "SUPRIATNA",
    "NURJANAH",
    "HASANAH",
    "MULYADI",
    "SANTOSO",
    "PRATAMA",
    "SUHERMAN",
    "MAEMUNAH",
    "KOMARUDIN",
    "JUBAEDAH",
]
VARIANTS = {"MUHAMMAD": "MOCHAMMAD", "SITI": "SITY", "AHMAD": "ACHMAD", "NUR": "NOER"}


def _typo(text: str, rnd: random.Random) -> str:
    if len(text) < 3:
        return text
    i = rnd.randrange(len(text) - 1)
    kind = rnd.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + rnd.choice("AEIOUNRST") + text[i + 1 :]
    return text[:i] + text[i + 1 :]


_PLACES = ["SUKAMAJU", "CIBADAK", "MELATI", "MAWAR", "KRAJAN", "GRIYA ASRI", "PASIR JAYA", "CIKUPA"]
_PREFIXES = ("Kp.", "Jl.", "Gg.", "Dsn.", "Perum")


def _address(rnd: random.Random) -> str:
    place = f"{rnd.choice(_PREFIXES)} {rnd.choice(_PLACES).title()}"
    return f"{place} RT {rnd.randint(1, 8):03d} RW {rnd.randint(1, 4):03d}"


def make_master(persons: int, seed: int, *, addresses: bool = False) -> list[dict[str, Any]]:
    """Master records (linkage-record shape; record_id is the NIK). With `addresses`, household
    addresses drawn from their own random stream (the other fields stay as without)."""
    rnd = random.Random(seed)
    address_rnd = random.Random(seed + 1)
    villages = [f"3603{d:02d}{2000 + v:04d}" for d in range(10, 40) for v in range(1, 12)]
    rows = []
    for i in range(persons):
        sex = rnd.choice("MF")
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randrange(30000))
        if rnd.random() < 0.03:
            birth = birth.replace(month=7, day=1)  # placeholder dates are common in Dukcapil data
        village = rnd.choice(villages)
        day = birth.day + (40 if sex == "F" else 0)
        nik = f"{village[:6]}{day:02d}{birth.month:02d}{birth.year % 100:02d}{i % 10000:04d}"
        name = " ".join([rnd.choice(GIVEN)] + rnd.sample(OTHER, rnd.choice((0, 1, 1, 2))))
        rows.append(
            {
                "record_id": nik,
                "nik": nik,
                "kk_number": f"{village[:6]}{rnd.randrange(10**10):010d}",
                "full_name": name,
                "sex": sex,
                "birth_date": birth.isoformat(),
                "birth_year": birth.year,
                "village_code": village,
                "address": _address(address_rnd) if addresses else None,
            }
        )
    unique = {r["nik"]: r for r in rows}
    return list(unique.values())


def make_queries(master: list[dict[str, Any]], count: int, seed: int, *, hard: bool = False) -> list[dict[str, Any]]:
    """Noisy copies of master rows, strangers and one all-null record. With `hard`, also (from a random
    stream of their own) name tokens dropped, added, reordered or initialled, birth years one off with
    the same day and month, and rewritten, partial or other addresses."""
    rnd = random.Random(seed)
    hard_rnd = random.Random(seed + 1)
    out: list[dict[str, Any]] = []
    for i in range(count):
        base = dict(rnd.choice(master))
        if hard:
            _hard_noise(base, hard_rnd)
        base["record_id"] = f"Q{i:06d}"
        roll = rnd.random()
        if roll < 0.25:
            base["nik"] = None
        elif roll < 0.35:
            base["nik"] = _typo(base["nik"], rnd)
        if rnd.random() < 0.3:
            base["full_name"] = _typo(base["full_name"], rnd)
        if rnd.random() < 0.2:
            first, *rest = base["full_name"].split(" ")
            base["full_name"] = " ".join([VARIANTS.get(first, first), *rest])
        if rnd.random() < 0.1:
            y, m, d = base["birth_date"].split("-")
            if int(d) <= 12:
                base["birth_date"] = f"{y}-{d}-{m}"
        if rnd.random() < 0.1:
            base["birth_date"] = None
        if rnd.random() < 0.05:
            base["sex"] = None
        if rnd.random() < 0.1:
            base["village_code"] = None
        if rnd.random() < 0.05:  # a stranger sharing a few fields with the master
            base["nik"] = None
            base["full_name"] = f"{rnd.choice(GIVEN)} {rnd.choice(OTHER)}"
        out.append(base)
    out.append({"record_id": "Q-ALL-NULL"})
    return out


def _hard_noise(row: dict[str, Any], rnd: random.Random) -> None:
    tokens = str(row["full_name"]).split(" ")
    roll = rnd.random()
    if roll < 0.08 and len(tokens) > 1:
        del tokens[rnd.randrange(1, len(tokens))]
    elif roll < 0.14:
        tokens.insert(rnd.randrange(len(tokens) + 1), rnd.choice(OTHER))
    elif roll < 0.20:
        tokens = tokens[-1:] + tokens[:-1]
    elif roll < 0.28 and len(tokens) > 1:
        tokens[0] = tokens[0][0] + "."
    row["full_name"] = " ".join(tokens)
    y, m, d = str(row["birth_date"]).split("-")
    if rnd.random() < 0.08 and (m, d) != ("02", "29"):
        row["birth_date"] = f"{int(y) + rnd.choice((-1, 1))}-{m}-{d}"
    address = row.get("address")
    roll = rnd.random()
    if address and roll < 0.15:  # RT/RW in another format
        head, rt, rw = address.rsplit(" ", 4)[0], int(address.split()[-3]), int(address.split()[-1])
        form = rnd.choice(["RT.{:03d}/RW.{:03d}", "{:03d}/{:03d}", "Rt{:02d} Rw{:02d}"])
        row["address"] = f"{head} {form.format(rt, rw)}"
    elif address and roll < 0.25:  # the RW left out
        row["address"] = address.rsplit(" ", 2)[0]
    elif roll < 0.35:  # another address
        row["address"] = _address(rnd)
    elif address and roll < 0.40:  # a typo in the place
        i = rnd.randrange(4, len(address) - 16)
        row["address"] = address[:i] + address[i + 1 :]


def prepare(rows: list[dict[str, Any]]) -> pa.Table:
    """Prepared columns of linkage records (the model engineer's normaliser)."""
    columns = (
        "record_id",
        "nik",
        "kk_number",
        "full_name",
        "sex",
        "birth_date",
        "birth_year",
        "village_code",
        "address",
    )
    table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
    return prepare_table(table)


def members_model(prior: float = 1e-4) -> dict[str, Any]:
    """The spec's members model as a Splink model dict, with fixed m/u per level."""
    from splink import DuckDBAPI, Linker

    empty = PREPARED_SCHEMA.empty_table()  # all model columns, so Splink's settings check is quiet
    db = DuckDBAPI(duckdb.connect())
    linker = Linker(db.register(empty, table_name="empty_members"), render_settings("members"))
    model: dict[str, Any] = linker.misc.save_model_to_json()
    model["probability_two_random_records_match"] = prior
    for c, comparison in enumerate(model["comparisons"]):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        n = len(levels)
        for i, level in enumerate(levels):
            # m falls and u rises down the levels, with a different slope per comparison
            level["m_probability"] = (n - i) ** (2 + c % 3) / sum((n - k) ** (2 + c % 3) for k in range(n))
            level["u_probability"] = (i + 1) ** (3 + c % 2) / sum((k + 1) ** (3 + c % 2) for k in range(n))
        if c == 2:  # exercise Splink's "level not observed" default of 1e-6
            levels[2]["m_probability"] = "level not observed in training dataset"
    assert math.isclose(
        sum(lv["u_probability"] for lv in model["comparisons"][0]["comparison_levels"] if "u_probability" in lv),
        1.0,
    )
    return model


def tf_table(master: pa.Table, column: str) -> pa.Table:
    """Splink's term-frequency table of a column, computed over the master only."""
    con = duckdb.connect()
    con.register("m", master)
    return con.sql(
        f'select "{column}", cast(count(*) as double) / (select count("{column}") from m) as "tf_{column}" '
        f'from m where "{column}" is not null group by "{column}"'
    ).to_arrow_table()


def splink_predict_between(model: dict[str, Any], master: pa.Table, queries: pa.Table) -> pa.Table:
    """Splink's own scoring of the query x master candidate pairs.

    Columns: record_id_l (query), record_id_r (master), match_weight."""
    from splink import DuckDBAPI, Linker

    db = DuckDBAPI(duckdb.connect())
    master_sdf = db.register(master, table_name="master_records")
    query_sdf = db.register(queries, table_name="query_records")
    linker = Linker([query_sdf, master_sdf], model)
    tf_columns = {
        lv["tf_adjustment_column"]
        for c in model["comparisons"]
        for lv in c["comparison_levels"]
        if lv.get("tf_adjustment_column")
    }
    for column in sorted(tf_columns):
        linker.table_management.register_term_frequency_lookup(
            db.register(tf_table(master, column), table_name=f"tf_lookup_{column}"), column
        )
    result = linker.inference.predict_between(query_sdf, master_sdf).as_duckdbpyrelation()
    return result.select("record_id_l, record_id_r, match_weight").to_arrow_table()


__all__ = [
    "BLOCKING_RULES",
    "COMPARISONS",
    "make_master",
    "make_queries",
    "members_model",
    "prepare",
    "splink_predict_between",
    "tf_table",
]
