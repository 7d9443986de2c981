"""JSON Schema export of the contracts to `contracts/schemas/*.json` (committed, checked for drift).

Inbound contracts are exported in validation mode (what a producer must send); outbound ones in
serialization mode (what we emit). Output is deterministic: sorted keys, two-space indent, final newline.

Three rewrites make the documents portable (docs/contracts.md): every schema gets a stable `$id` (a URN,
nothing to fetch); pydantic's `discriminator` (an OpenAPI keyword, unknown to JSON Schema 2020-12, so Ajv's
strict mode refuses it) is dropped, the `oneOf` branches already tell the variants apart by their `const`
tag; and outbound schemas have open content (no `additionalProperties: false`), so a field added later in
the same version never breaks a consumer that validates with an older copy of the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter

from contracts.dead_letter import DEAD_LETTER_ADAPTER
from contracts.feedback import FIELD_FEEDBACK_ADAPTER
from contracts.linkage_outputs import INTEGRATED_FAMILY_ADAPTER, LINKED_MEMBER_ADAPTER, REVIEW_TASK_ADAPTER
from contracts.linkage_updates import LINKAGE_UPDATE_ADAPTER
from contracts.population import POPULATION_CHANGE_ADAPTER, POPULATION_RECORD_ADAPTER
from contracts.review_decisions import REVIEW_DECISION_ADAPTER
from contracts.sectoral import SECTORAL_RECORD_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER
from contracts.subscriptions import NotificationEnvelope

#: Where the committed schemas live.
SCHEMA_DIR = Path(__file__).parent / "schemas"

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: Prefix of every schema's `$id`: `urn:regsosek:contract:<file stem>`, e.g. `...:linked_member.v1`.
ID_PREFIX = "urn:regsosek:contract:"

NOTIFICATION_ADAPTER: TypeAdapter[NotificationEnvelope] = TypeAdapter(NotificationEnvelope)


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
    SchemaSpec("field_feedback.v1.json", "FieldFeedback", FIELD_FEEDBACK_ADAPTER, "serialization"),
    SchemaSpec("notification.v1.json", "NotificationEnvelope", NOTIFICATION_ADAPTER, "serialization"),
)


def schema_id(file_name: str) -> str:
    """The stable `$id` of a schema file, e.g. `urn:regsosek:contract:linked_member.v1`."""
    return ID_PREFIX + file_name.removesuffix(".json")


_STRING_KEYWORDS = ("pattern", "minLength", "maxLength", "format")


def _push_string_keywords(node: dict[str, Any]) -> dict[str, Any]:
    # `Field(json_schema_extra={"pattern": ...})` on an optional string lands next to `anyOf`, where Ajv's
    # strictTypes refuses it; the same rule is meant for the string branch, so move it there.
    moved = {k: node[k] for k in _STRING_KEYWORDS if k in node}
    if not moved or "type" in node or "anyOf" not in node:
        return node
    branches = [{**b, **moved} if b.get("type") == "string" else b for b in node["anyOf"]]
    return {**{k: v for k, v in node.items() if k not in moved}, "anyOf": branches}


def portable(node: Any, *, open_content: bool) -> Any:
    """`node` without `discriminator` (and without `additionalProperties: false` when `open_content`)."""
    if isinstance(node, list):
        return [portable(item, open_content=open_content) for item in node]
    if not isinstance(node, dict):
        return node
    node = _push_string_keywords(node)
    out = {}
    for key, value in node.items():
        if key == "discriminator":
            continue
        if key == "additionalProperties" and value is False and open_content:
            continue
        # Property names are data, not keywords: recurse into their schemas but keep every name.
        if key in ("properties", "$defs"):
            out[key] = {name: portable(sub, open_content=open_content) for name, sub in value.items()}
        else:
            out[key] = portable(value, open_content=open_content)
    return out


def generate_schema(spec: SchemaSpec) -> dict[str, Any]:
    """The JSON Schema document of one contract."""
    schema = portable(spec.adapter.json_schema(mode=spec.mode), open_content=spec.mode == "serialization")
    return {"$schema": _DIALECT, "$id": schema_id(spec.file_name), **schema, "title": spec.title}


def render_schema(spec: SchemaSpec) -> str:
    """The exact text written to the schema file."""
    return json.dumps(generate_schema(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(out_dir: Path = SCHEMA_DIR, *, on_written: Callable[[Path, bool], None] | None = None) -> list[Path]:
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
