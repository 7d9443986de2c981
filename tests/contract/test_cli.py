"""`regsosek contracts export|validate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from contracts.schema_export import SCHEMA_DIR, SCHEMAS
from services.commands.contracts import register
from tests.contract.helpers import full_submission, load

# Wide terminal so rich does not wrap the usage-error panel.
runner = CliRunner(env={"COLUMNS": "200"})


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    register(app)
    return app


def test_export_writes_the_committed_schemas(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["contracts", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for spec in SCHEMAS:
        assert (tmp_path / spec.file_name).read_text() == (SCHEMA_DIR / spec.file_name).read_text()
    assert result.output.count("updated") == len(SCHEMAS)
    again = runner.invoke(_app(), ["contracts", "export", "--out", str(tmp_path)])
    assert again.output.count("updated") == 0


def test_validate_reports_each_invalid_line(tmp_path: Path) -> None:
    good = full_submission()
    bad_nik = full_submission()
    bad_nik["members"][0]["nik"] = "36031215058000"
    flagged = full_submission()
    flagged["members"][0]["sex"] = 2
    lines = [json.dumps(good), "not json", "", json.dumps(bad_nik), json.dumps(flagged)]
    file = tmp_path / "submissions.jsonl"
    file.write_text("\n".join(lines) + "\n")
    result = runner.invoke(_app(), ["contracts", "validate", str(file)])
    assert result.exit_code == 1
    out = result.output
    assert "line 2: <message>: Invalid JSON: expected ident at line 1 column 2 [json_invalid]" in out
    assert "line 4: members.0.nik: NIK must be exactly 16 digits [invalid_nik]" in out
    assert "2 valid, 2 invalid, 1 blank lines" in out
    assert "invalid (invalid_nik): 1" in out and "invalid (not_json): 1" in out
    # Two placeholder members (one per valid file line) and one sex mismatch.
    assert "warning (birth_date_placeholder): 2" in out
    assert "warning (nik_sex_mismatch): 1" in out
    assert "36031215058000" not in out


def test_validate_other_kinds(tmp_path: Path) -> None:
    file = tmp_path / "dtks.jsonl"
    file.write_text(
        json.dumps(load("sectoral_dtks.json")) + "\n" + json.dumps(load("sectoral_bpjs.json")) + "\n"
    )
    result = runner.invoke(_app(), ["contracts", "validate", str(file), "--kind", "sectoral"])
    assert result.exit_code == 0, result.output
    assert "2 valid, 0 invalid, 0 blank lines" in result.output


def test_validate_dead_letters(tmp_path: Path) -> None:
    letter = load("dead_letter.json")
    extra = dict(letter, retry_count=1)
    file = tmp_path / "dlq.jsonl"
    file.write_text(json.dumps(letter) + "\n" + json.dumps(extra) + "\n")
    result = runner.invoke(_app(), ["contracts", "validate", str(file), "--kind", "dead-letter"])
    assert result.exit_code == 1
    assert "line 2: retry_count: Extra inputs are not permitted [extra_forbidden]" in result.output
    assert "1 valid, 1 invalid, 0 blank lines" in result.output


def test_validate_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["contracts", "validate", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "is not a readable file" in result.output
