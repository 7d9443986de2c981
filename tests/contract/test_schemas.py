"""Committed JSON Schemas: in sync with the models (drift), and the committed v1 examples still validate
against both the models and the committed schemas (no breaking change inside a version)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from contracts.schema_export import SCHEMA_DIR, SCHEMAS, export_schemas, render_schema, stale_schemas
from tests.contract.helpers import FIXTURES_V1, KINDS, fixture_paths, kind_of

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    stale = stale_schemas()
    assert stale == [], f"models changed without re-exporting: run `regsosek contracts export` ({stale})"


def test_schema_folder_holds_exactly_the_exported_schemas() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(s.file_name for s in SCHEMAS)


def test_drift_is_detected(tmp_path: Path) -> None:
    export_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    target = tmp_path / "family_submission.v1.json"
    doc = json.loads(target.read_text())
    del doc["$defs"]["Member"]["properties"]["nik"]
    target.write_text(json.dumps(doc))
    assert stale_schemas(tmp_path) == ["family_submission.v1.json"]


def _rendered_in_a_new_process(hash_seed: str) -> str:
    """Every schema's text rendered by a fresh interpreter with the given PYTHONHASHSEED."""
    code = "from contracts.schema_export import SCHEMAS, render_schema; print(''.join(map(render_schema, SCHEMAS)))"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_export_is_deterministic_across_processes() -> None:
    """Set and dict orders that follow string hashes differ between interpreters: the export must not.

    Two fresh processes with different hash seeds render byte-identical text, equal to this process's.
    """
    here = "".join(render_schema(s) for s in SCHEMAS) + "\n"
    assert _rendered_in_a_new_process("1") == here
    assert _rendered_in_a_new_process("2") == here


def test_every_contract_has_v1_examples() -> None:
    prefixes = {prefix for path in fixture_paths() for prefix in KINDS if path.name.startswith(prefix)}
    assert prefixes == set(KINDS)
    assert len(fixture_paths()) >= 15


@pytest.mark.parametrize("path", fixture_paths(), ids=lambda p: p.name)
def test_v1_example_still_validates(path: Path) -> None:
    adapter, schema_file = kind_of(path)
    raw = path.read_bytes()
    adapter.validate_json(raw)
    if "lenient" in path.name:
        # Sloppy-but-tolerated input ("" for null, 98 for an unknown day, RT "7"): the models accept it,
        # the schema documents only the canonical form.
        return
    schema = json.loads((SCHEMA_DIR / schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads(raw))


def test_schema_rejects_what_the_model_rejects() -> None:
    schema = json.loads((SCHEMA_DIR / "family_submission.v1.json").read_text())
    doc = json.loads((FIXTURES_V1 / "family_submission_full.json").read_bytes())
    doc["members"][0]["presence"] = 6
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)
    doc["members"][0]["presence"] = 1
    doc["members"][0]["nik"] = "123"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)
