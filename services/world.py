"""A generated world's files as the batch commands link them (`regsosek train`, `evaluate`, benches).

The survey members go through the same mapping as the streaming linker: each line of submissions.jsonl
is parsed into a `FamilySubmission` (the contract; a bad line is an error naming the line and the fields,
never dropped) and mapped by `integration.mapping`. The master and the sectoral files are converted by
`linkage.records`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.decode import ContractViolation, decode
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmission
from integration.mapping import record_columns, submission_queries
from linkage.records import bpjs_records, dtks_records, member_table, population_records

SOURCES = ("members", "dtks", "bpjs")


class WorldInputError(ValueError):
    """A world file that cannot be linked (its message is one line, without personal data)."""


def read_submissions(path: Path) -> list[FamilySubmission]:
    """The FamilySubmissions of a JSON-lines file, in file order (blank lines skipped); raises
    `WorldInputError` naming the first line that breaks the contract (field locations, never values)."""
    out: list[FamilySubmission] = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(decode(FAMILY_SUBMISSION_ADAPTER, line.strip()))
            except ContractViolation as e:
                detail = "; ".join(e.detail.splitlines())
                raise WorldInputError(
                    f"{path} line {number} is not a valid FamilySubmission ({e.reason.value}: {detail})"
                ) from None
    return out


def village_crosswalk(path: Path) -> dict[str, str]:
    """BPS -> Kemendagri village codes of a crosswalk.parquet."""
    table = pq.read_table(path, columns=["level", "bps_code", "kemendagri_code"]).to_pylist()
    return {r["bps_code"]: r["kemendagri_code"] for r in table if r["level"] == "village"}


def member_records(submissions: Iterable[FamilySubmission], crosswalk: Mapping[str, str] | None) -> pa.Table:
    """Every member of every submission as a linkage record with family context (record id
    `<submission id>/<serial>`, the truth file's key): `integration.mapping`, as the linker maps them."""
    return member_table(record_columns(submission_queries(submissions, crosswalk)))


def load_world_source(world_dir: Path | str, source: str) -> tuple[pa.Table, pa.Table]:
    """(master linkage records, `source` linkage records) of a generated world folder.

    `source` is `members` (submissions.jsonl, with family context), `dtks` or `bpjs`. The master also
    carries the population's `relationship` (who heads each KK) for the family tie-break. The truth file
    is never read here. Raises OSError for a missing file, `WorldInputError` for a bad submission.
    """
    world_dir = Path(world_dir)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected members, dtks or bpjs")
    population = pq.read_table(world_dir / "population.parquet")
    master = population_records(population)
    if "relationship" in population.column_names:
        master = master.append_column("relationship", population.column("relationship"))
    if source == "members":
        crosswalk = village_crosswalk(world_dir / "crosswalk.parquet")
        records = member_records(read_submissions(world_dir / "submissions.jsonl"), crosswalk)
    elif source == "dtks":
        records = dtks_records(pq.read_table(world_dir / "dtks.parquet"))
    else:
        records = bpjs_records(pq.read_table(world_dir / "bpjs.parquet"))
    return master, records
