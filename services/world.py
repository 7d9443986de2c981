"""A generated world's files as the batch commands link them (`regsosek train`, `evaluate`, benches).

The survey members go through the same mapping as the streaming linker: each line of submissions.jsonl
is parsed into a `FamilySubmission` (the contract) and mapped by `integration.mapping`. The master and
the sectoral files are converted by `linkage.records`.

A batch file is linked as a whole, also when some of it breaks the contract (worlds written by others,
worlds with deliberately mistyped NIKs): where the contract names member or family fields (an invalid
NIK, a birth date that does not exist), those fields are blanked and the line is read again, so the
member is still linked on what is left; a line that stays invalid (not JSON, a required field missing)
is skipped. Nothing is dropped silently: `SubmissionsRead.summary` is one line with the counts by reason
and the first line numbers, which the commands print as a warning. (The streaming linker is stricter:
it dead-letters such a submission whole, docs/linker.md.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from contracts.decode import ContractViolation, decode
from contracts.submission import FAMILY_SUBMISSION_ADAPTER, FamilySubmission
from integration.mapping import record_columns, submission_queries
from linkage.records import bpjs_records, dtks_records, member_table, population_records

SOURCES = ("members", "dtks", "bpjs")


class WorldInputError(ValueError):
    """A world file that cannot be linked (its message is one line, without personal data)."""


#: How often a line's named fields are blanked before the line is given up (each pass may reveal more).
_REPAIR_PASSES = 3


@dataclass
class SubmissionsRead:
    """The submissions of a file, with what had to be repaired or skipped to read them."""

    submissions: list[FamilySubmission] = field(default_factory=list)
    #: Error types whose fields were blanked, with how many fields.
    repaired: Counter[str] = field(default_factory=Counter)
    repaired_lines: list[int] = field(default_factory=list)
    #: (line number, reason) of the lines that could not be read.
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def summary(self, path: Path) -> str | None:
        """One line for the user (counts, reasons, first line numbers; never a value), or None."""
        parts = []
        if self.repaired_lines:
            why = ", ".join(f"{kind} {n}" for kind, n in sorted(self.repaired.items()))
            parts.append(
                f"{len(self.repaired_lines)} submission(s) read with fields blanked ({why}; lines "
                f"{_first(self.repaired_lines)})"
            )
        if self.skipped:
            reasons = Counter(reason for _, reason in self.skipped)
            why = ", ".join(f"{kind} {n}" for kind, n in sorted(reasons.items()))
            parts.append(f"{len(self.skipped)} line(s) skipped ({why}; lines {_first([n for n, _ in self.skipped])})")
        return f"{path}: " + "; ".join(parts) if parts else None


def _first(numbers: list[int], shown: int = 5) -> str:
    head = ", ".join(str(n) for n in numbers[:shown])
    return head + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def _blank(doc: Any, location: str) -> bool:
    """Blank the field at a dotted `location` (`members.2.nik`) of `doc`: None, or for an object each of its
    parts None; False if there is nothing to blank."""
    *path, name = location.split(".")
    node = doc
    for part in path:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    if not isinstance(node, dict) or node.get(name) is None or isinstance(node[name], list):
        return False  # nothing there, or a list (its own errors name its items)
    if isinstance(node[name], dict):  # an object that fails as a whole (a date that does not exist):
        if all(v is None for v in node[name].values()):
            return False
        node[name] = dict.fromkeys(node[name])  # each of its parts becomes unknown
    else:
        node[name] = None
    return True


def _read_line(line: bytes) -> tuple[FamilySubmission | None, Counter[str], str | None]:
    """(the submission or None, the error types of blanked fields, the reason it was skipped)."""
    try:
        return decode(FAMILY_SUBMISSION_ADAPTER, line), Counter(), None
    except ContractViolation as first:
        violation = first
    try:
        doc = json.loads(line)
    except ValueError:
        return None, Counter(), violation.reason.value
    blanked: Counter[str] = Counter()
    for _ in range(_REPAIR_PASSES):
        changed = [e for e in violation.errors if _blank(doc, e.location)]
        if not changed:
            break
        blanked.update(e.error_type for e in changed)
        try:
            return decode(FAMILY_SUBMISSION_ADAPTER, json.dumps(doc).encode()), blanked, None
        except ContractViolation as again:
            violation = again
    return None, Counter(), violation.reason.value


def read_submissions(path: Path) -> SubmissionsRead:
    """The FamilySubmissions of a JSON-lines file, in file order (blank lines skipped), repairing or
    skipping what breaks the contract (module docstring). Raises `WorldInputError` when no line is valid."""
    read = SubmissionsRead()
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            submission, blanked, reason = _read_line(line.strip())
            if submission is not None:
                read.submissions.append(submission)
                if blanked:
                    read.repaired.update(blanked)
                    read.repaired_lines.append(number)
            else:
                read.skipped.append((number, reason or "invalid"))
    if not read.submissions and read.skipped:
        first, reason = read.skipped[0]
        raise WorldInputError(f"{path}: no line is a valid FamilySubmission (line {first}: {reason})")
    return read


def village_crosswalk(path: Path) -> dict[str, str]:
    """BPS -> Kemendagri village codes of a crosswalk.parquet."""
    table = pq.read_table(path, columns=["level", "bps_code", "kemendagri_code"]).to_pylist()
    return {r["bps_code"]: r["kemendagri_code"] for r in table if r["level"] == "village"}


def member_records(submissions: Iterable[FamilySubmission], crosswalk: Mapping[str, str] | None) -> pa.Table:
    """Every member of every submission as a linkage record with family context (record id
    `<submission id>/<serial>`, the truth file's key): `integration.mapping`, as the linker maps them."""
    return member_table(record_columns(submission_queries(submissions, crosswalk)))


def load_world_source(
    world_dir: Path | str, source: str, *, notes: Callable[[str], None] | None = None
) -> tuple[pa.Table, pa.Table]:
    """(master linkage records, `source` linkage records) of a generated world folder.

    `source` is `members` (submissions.jsonl, with family context), `dtks` or `bpjs`. The master also
    carries the population's `relationship` (who heads each KK) for the family tie-break. The truth file
    is never read here. Raises OSError for a missing file, `WorldInputError` when no submission is valid;
    `notes` gets the one-line summary of repaired or skipped submission lines, when there are any.
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
        path = world_dir / "submissions.jsonl"
        read = read_submissions(path)
        summary = read.summary(path)
        if summary is not None and notes is not None:
            notes(summary)
        records = member_records(read.submissions, crosswalk)
    elif source == "dtks":
        records = dtks_records(pq.read_table(world_dir / "dtks.parquet"))
    else:
        records = bpjs_records(pq.read_table(world_dir / "bpjs.parquet"))
    return master, records
