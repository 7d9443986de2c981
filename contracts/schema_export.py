"""JSON Schema export of the contracts to `contracts/schemas/*.json` (committed, checked for drift).

Inbound contracts are exported in validation mode (what a producer must send); outbound ones in
serialization mode (what we emit). Output is deterministic: sorted keys, two-space indent, final newline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from contracts.dead_letter import DEAD_LETTER_ADAPTER
from contracts.linkage_outputs import INTEGRATED_FAMILY_ADAPTER, LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.population import POPULATION_CHANGE_ADAPTER, POPULATION_RECORD_ADAPTER
from contracts.review_decisions import REVIEW_DECISION_ADAPTER
from contracts.sectoral import SECTORAL_RECORD_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER

#: Where the committed schemas live.
SCHEMA_DIR = Path(__file__).parent / "schemas"

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class SchemaSpec:
    """One exported schema: file name, the adapter that defines it and the direction of the message."""

    file_name: str
    title: str
    adapter: TypeAdapter[Any]
    mode: Literal["validation", "serialization"]


SCHEMAS: tuple[SchemaSpec, ...] = (
    SchemaSpec("family_submission.v1.json", "FamilySubmission", FAMILY_SUBMISSION_ADAPTER, "validation"),
    SchemaSpec("population_record.v1.json", "PopulationRecord", POPULATION_RECORD_ADAPTER, "validation"),
    SchemaSpec("population_change.v1.json", "PopulationChange", POPULATION_CHANGE_ADAPTER, "validation"),
    SchemaSpec("sectoral_record.v1.json", "SectoralRecord", SECTORAL_RECORD_ADAPTER, "validation"),
    SchemaSpec("dead_letter.v1.json", "DeadLetter", DEAD_LETTER_ADAPTER, "serialization"),
    SchemaSpec("linked_member.v1.json", "LinkedMember", LINKED_MEMBER_ADAPTER, "serialization"),
    SchemaSpec("integrated_family.v1.json", "IntegratedFamily", INTEGRATED_FAMILY_ADAPTER, "serialization"),
    SchemaSpec("review_task.v1.json", "ReviewTask", REVIEW_TASK_ADAPTER, "serialization"),
    SchemaSpec("linkage_update.v1.json", "LinkageUpdate", LINKAGE_UPDATE_ADAPTER, "serialization"),
    SchemaSpec("review_decision.v1.json", "ReviewDecision", REVIEW_DECISION_ADAPTER, "serialization"),
)


def generate_schema(spec: SchemaSpec) -> dict[str, Any]:
    """The JSON Schema document of one contract."""
    schema = spec.adapter.json_schema(mode=spec.mode)
    return {"$schema": _DIALECT, **schema, "title": spec.title}


def render_schema(spec: SchemaSpec) -> str:
    """The exact text written to the schema file."""
    return json.dumps(generate_schema(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(
    out_dir: Path = SCHEMA_DIR, *, on_written: Callable[[Path, bool], None] | None = None
) -> list[Path]:
    """Write every schema to `out_dir`; `on_written(path, changed)` is called per file. Returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for spec in SCHEMAS:
        path = out_dir / spec.file_name
        text = render_schema(spec)
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        if changed:
            path.write_text(text, encoding="utf-8")
        if on_written is not None:
            on_written(path, changed)
        written.append(path)
    return written


def stale_schemas(out_dir: Path = SCHEMA_DIR) -> list[str]:
    """File names whose committed text differs from what the models generate now (empty when in sync)."""
    stale = []
    for spec in SCHEMAS:
        path = out_dir / spec.file_name
        if not path.exists() or path.read_text(encoding="utf-8") != render_schema(spec):
            stale.append(spec.file_name)
    return stale
