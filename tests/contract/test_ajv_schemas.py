"""Every committed schema compiles in Ajv's strict mode (draft 2020-12 + ajv-formats, as a Node consumer
would use them) and accepts the records our own code produces for it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from contracts.schema_export import SCHEMA_DIR, SCHEMAS
from tests.contract.samples import all_samples
from tests.node_tools import node_tools


def _ajv(schema_dir: Path, samples: dict[str, list[dict[str, Any]]], tmp_path: Path) -> dict[str, Any]:
    tools = node_tools()
    samples_file = tmp_path / "samples.json"
    samples_file.write_text(json.dumps(samples), encoding="utf-8")
    done = subprocess.run(
        ["node", str(tools / "check_schemas.mjs"), str(schema_dir), str(samples_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_every_schema_compiles_in_strict_mode_and_accepts_our_records(tmp_path: Path) -> None:
    samples = all_samples(tmp_path / "disclosures.sqlite")
    names = sorted(s.file_name for s in SCHEMAS)
    assert sorted(samples) == names  # a sample for every schema, so none goes unchecked
    report = _ajv(SCHEMA_DIR, samples, tmp_path)
    assert report["compile_errors"] == {}
    assert report["compiled"] == names
    assert report["invalid"] == {}
    assert report["validated"] == {name: len(records) for name, records in samples.items()}


def test_strict_mode_refuses_an_unknown_keyword(tmp_path: Path) -> None:
    # The check can fail: pydantic's `discriminator` (what 4 schemas carried before) is refused.
    doc = json.loads((SCHEMA_DIR / "linkage_update.v1.json").read_text(encoding="utf-8"))
    doc["discriminator"] = {"propertyName": "event"}
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "linkage_update.v1.json").write_text(json.dumps(doc), encoding="utf-8")
    report = _ajv(tmp_path / "schemas", {}, tmp_path)
    assert list(report["compile_errors"]) == ["linkage_update.v1.json"]
    assert 'unknown keyword: "discriminator"' in report["compile_errors"]["linkage_update.v1.json"]


def test_a_record_breaking_the_contract_is_reported(tmp_path: Path) -> None:
    member = all_samples(tmp_path / "d.sqlite")["linked_member.v1.json"][0]
    member["probability"] = "high"
    report = _ajv(SCHEMA_DIR, {"linked_member.v1.json": [member]}, tmp_path)
    [[index, errors]] = report["invalid"]["linked_member.v1.json"]
    assert index == 0
    assert {e["instancePath"] for e in errors} == {"/probability"}


def test_every_schema_has_a_stable_id() -> None:
    ids = {json.loads((SCHEMA_DIR / s.file_name).read_text())["$id"] for s in SCHEMAS}
    assert ids == {f"urn:regsosek:contract:{s.file_name.removesuffix('.json')}" for s in SCHEMAS}
