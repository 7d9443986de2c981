"""`regsosek contracts export|validate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from contracts.schema_export import SCHEMA_DIR, SCHEMAS
from services.commands.contracts import MAX_LINE_BYTES, LineTooLong, read_lines, register
from services.commands.generate import register as register_generate
from tests.contract.helpers import full_submission, load
from tests.contract.samples import all_samples

# Wide terminal so rich does not wrap the usage-error panel.
runner = CliRunner(env={"COLUMNS": "200"})


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    register(app)
    register_generate(app)
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
    file.write_text(json.dumps(load("sectoral_dtks.json")) + "\n" + json.dumps(load("sectoral_bpjs.json")) + "\n")
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


def test_validate_every_output_contract(tmp_path: Path) -> None:
    samples = all_samples(tmp_path / "d.sqlite")
    for contract, schema in [
        ("member", "linked_member.v1.json"),
        ("family", "integrated_family.v1.json"),
        ("review", "review_task.v1.json"),
        ("update", "linkage_update.v1.json"),
        ("notification", "notification.v1.json"),
    ]:
        records = samples[schema]
        file = tmp_path / f"{contract}.jsonl"
        file.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"schema_version": "1"}\n')
        result = runner.invoke(_app(), ["contracts", "validate", str(file), "--contract", contract])
        assert result.exit_code == 1, (contract, result.output)
        assert f"{len(records)} valid, 1 invalid, 0 blank lines" in result.output, contract
        assert f"line {len(records) + 1}: " in result.output


def test_validate_a_huge_line_is_one_line_error_not_memory(tmp_path: Path) -> None:
    file = tmp_path / "one-line.jsonl"
    with file.open("wb") as fh:
        fh.write(json.dumps(full_submission()).encode() + b"\n")
        fh.write(b"[" + b"1," * (MAX_LINE_BYTES // 2) + b"1]\n")
    result = runner.invoke(_app(), ["contracts", "validate", str(file), "--contract", "submission"])
    assert result.exit_code == 2
    assert result.stderr == f"error: {file}: line 2 is longer than {MAX_LINE_BYTES} bytes; not a JSON Lines file?\n"


def test_read_lines_allows_a_line_of_exactly_the_bound(tmp_path: Path) -> None:
    file = tmp_path / "x"
    file.write_bytes(b"abcde\n" + b"abcdef\n")
    with file.open("rb") as fh:
        lines = read_lines(fh, max_bytes=5)
        assert next(lines) == b"abcde\n"  # the bound counts the line's bytes, not its newline
        with pytest.raises(LineTooLong, match="line 2 is longer than 5 bytes"):
            next(lines)
    file.write_bytes(b"abcde")
    with file.open("rb") as fh:
        assert list(read_lines(fh, max_bytes=5)) == [b"abcde"]


def test_generate_into_an_existing_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "world"
    target.write_text("not a folder")
    result = runner.invoke(_app(), ["generate", "--out", str(target), "--persons", "10", "--seed", "1"])
    assert result.exit_code == 2
    assert result.stderr == f"error: --out {target} exists and is not a folder\n"
