"""Shared helpers of the contract tests: loading the committed v1 example messages and mutating copies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.dead_letter import DEAD_LETTER_ADAPTER
from contracts.population import POPULATION_CHANGE_ADAPTER, POPULATION_RECORD_ADAPTER
from contracts.review_decisions import REVIEW_DECISION_ADAPTER
from contracts.sectoral import SECTORAL_RECORD_ADAPTER
from contracts.submission import FAMILY_SUBMISSION_ADAPTER

FIXTURES_V1 = Path(__file__).parent / "fixtures" / "v1"

# File-name prefix of a fixture -> (adapter, schema file it must also satisfy).
KINDS: dict[str, tuple[TypeAdapter[Any], str]] = {
    "family_submission": (FAMILY_SUBMISSION_ADAPTER, "family_submission.v1.json"),
    "population_record": (POPULATION_RECORD_ADAPTER, "population_record.v1.json"),
    "population_change": (POPULATION_CHANGE_ADAPTER, "population_change.v1.json"),
    "sectoral": (SECTORAL_RECORD_ADAPTER, "sectoral_record.v1.json"),
    "dead_letter": (DEAD_LETTER_ADAPTER, "dead_letter.v1.json"),
    "review_decision": (REVIEW_DECISION_ADAPTER, "review_decision.v1.json"),
}


def fixture_paths() -> list[Path]:
    """Every committed v1 example message."""
    return sorted(FIXTURES_V1.glob("*.json"))


def kind_of(path: Path) -> tuple[TypeAdapter[Any], str]:
    """The adapter and schema file of a fixture, from its file-name prefix."""
    for prefix, kind in KINDS.items():
        if path.name.startswith(prefix):
            return kind
    raise AssertionError(f"fixture {path.name} has no known prefix")


def load(name: str) -> dict[str, Any]:
    """A fresh, mutable copy of a fixture document."""
    return copy.deepcopy(json.loads((FIXTURES_V1 / name).read_text(encoding="utf-8")))


def full_submission() -> dict[str, Any]:
    """The fully populated family submission example (4 members)."""
    return load("family_submission_full.json")


def as_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode("utf-8")
