"""The disclosure log's hash chain: `audit verify` finds rows deleted, altered or reordered directly in
SQLite after the triggers were dropped (as an attacker with the file would), and names the position."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.privacy.disclosure import IN_DOUBT, SENT, Disclosure, DisclosureLog

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _entry(i: int) -> Disclosure:
    return Disclosure(
        message_id=f"m-{i}",
        subscriber_id="kemensos",
        purpose_code="BANSOS-TARGETING",
        event_type="link_created",
        record_type="person",
        subject_id=f"p-{i}",
        reference_id=f"prs-{i}",
        fields=("decision", "nik"),
        disclosed_at=T0 + timedelta(seconds=i),
        source=f"linkage.members.v1/0/{i}",
        person_ids=(f"p-{i}",),
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """A log with chain positions: 1 entry m-1, 2 entry m-2, 3 sent m-1, 4 entry m-3, 5 sent m-2, 6 in doubt m-3."""
    path = tmp_path / "disclosures.sqlite"
    log = DisclosureLog(path)
    log.append([_entry(1), _entry(2)])
    log.mark(SENT, ["m-1"], T0 + timedelta(minutes=1))
    log.append([_entry(3)])
    log.mark(SENT, ["m-2"], T0 + timedelta(minutes=2))
    log.mark(IN_DOUBT, ["m-3"], T0 + timedelta(minutes=3))
    log.mark(SENT, ["m-1"], T0 + timedelta(minutes=4))  # already there: no new row, no new link
    log.append([_entry(1)])  # the same message again: no new row
    log.close()
    return path


def _attack(path: Path, *sql: str) -> None:
    """What the issue's attacker did: drop every trigger, then edit the rows."""
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    for statement in sql:
        db.execute(statement)
    db.commit()
    db.close()


def _verify(cli_app: typer.Typer, path: Path, *extra: str) -> tuple[int, list[str]]:
    done = CliRunner().invoke(cli_app, ["audit", "verify", "--db", str(path), *extra])
    return done.exit_code, done.output.splitlines()


def test_an_intact_log_verifies_and_prints_its_head(cli_app: typer.Typer, log_path: Path) -> None:
    code, lines = _verify(cli_app, log_path)
    assert code == 0, lines
    (line,) = lines
    assert line.startswith("ok: 6 rows chained, head ") and len(line.split()[-1]) == 64


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Deleting an entry (with its persons), as the attacker did.
        (
            [
                "DELETE FROM disclosures WHERE message_id = 'm-2'",
                "DELETE FROM disclosed_persons WHERE message_id = 'm-2'",
            ],
            ["TAMPERED position 2: entry m-2 was deleted"],
        ),
        # ... and its chain row too: the next row no longer follows from the one before.
        (
            ["DELETE FROM disclosures WHERE message_id = 'm-2'", "DELETE FROM disclosure_chain WHERE pos = 2"],
            [
                "TAMPERED position 2: chain rows 2-2 are missing (deleted)",
                "TAMPERED position 3: outcome m-1 (sent) was altered, or rows were reordered or removed before it",
            ],
        ),
        # ... and the chain renumbered so no position is missing.
        (
            [
                "DELETE FROM disclosures WHERE message_id = 'm-2'",
                "DELETE FROM disclosure_chain WHERE pos = 2",
                "UPDATE disclosure_chain SET pos = pos - 1 WHERE pos > 2",
            ],
            ["TAMPERED position 2: outcome m-1 (sent) was altered, or rows were reordered or removed before it"],
        ),
        # An altered entry: who received it.
        (
            ["UPDATE disclosures SET subscriber_id = 'kemenkes' WHERE message_id = 'm-3'"],
            ["TAMPERED position 4: entry m-3 was altered, or rows were reordered or removed before it"],
        ),
        # An altered disclosed person of an entry.
        (
            ["UPDATE disclosed_persons SET person_id = 'p-x' WHERE message_id = 'm-1'"],
            ["TAMPERED position 1: entry m-1 was altered, or rows were reordered or removed before it"],
        ),
        # A deleted outcome (the acknowledgement of m-2 removed).
        (
            ["DELETE FROM disclosure_outcomes WHERE message_id = 'm-2' AND outcome = 'sent'"],
            ["TAMPERED position 5: outcome m-2 (sent) was deleted"],
        ),
        # Two entries reordered in the log (their seq swapped).
        (
            [
                "UPDATE disclosures SET seq = 100 WHERE message_id = 'm-1'",
                "UPDATE disclosures SET seq = 1 WHERE message_id = 'm-2'",
                "UPDATE disclosures SET seq = 2 WHERE message_id = 'm-1'",
            ],
            [
                "TAMPERED position 1: entry m-1 was altered, or rows were reordered or removed before it",
                "TAMPERED position 2: entry m-2 was altered, or rows were reordered or removed before it",
            ],
        ),
        # Two chain rows swapped.
        (
            [
                "UPDATE disclosure_chain SET pos = 100 WHERE pos = 3",
                "UPDATE disclosure_chain SET pos = 3 WHERE pos = 4",
                "UPDATE disclosure_chain SET pos = 4 WHERE pos = 100",
            ],
            [
                "TAMPERED position 3: entry m-3 was altered, or rows were reordered or removed before it",
                "TAMPERED position 4: outcome m-1 (sent) was altered, or rows were reordered or removed before it",
                "TAMPERED position 5: outcome m-2 (sent) was altered, or rows were reordered or removed before it",
            ],
        ),
        # A row inserted behind the publisher's back.
        (
            ["INSERT INTO disclosure_outcomes (message_id, outcome, recorded_at) VALUES ('m-3', 'sent', 'x')"],
            ["TAMPERED outside the chain: outcome m-3 (sent) is not in the chain (inserted outside the publisher)"],
        ),
    ],
    ids=[
        "entry-deleted",
        "entry-and-chain-row-deleted",
        "chain-renumbered",
        "entry-altered",
        "person-altered",
        "outcome-deleted",
        "entries-reordered",
        "chain-reordered",
        "row-inserted",
    ],
)
def test_verify_names_the_position_of_each_tampering(
    cli_app: typer.Typer, log_path: Path, sql: list[str], expected: list[str]
) -> None:
    _attack(log_path, *sql)
    code, lines = _verify(cli_app, log_path)
    assert code == 1
    problems = [line for line in lines if line.startswith("TAMPERED")]
    assert problems == expected
    assert lines[-1].endswith(" chained rows") and lines[-1].startswith(f"{len(problems)} problems in ")


def test_a_cut_tail_is_found_only_against_a_recorded_head(cli_app: typer.Typer, log_path: Path) -> None:
    code, lines = _verify(cli_app, log_path)
    recorded = lines[0].split()[-1]
    _attack(
        log_path,
        "DELETE FROM disclosure_outcomes WHERE message_id = 'm-3'",
        "DELETE FROM disclosure_chain WHERE pos = 6",
    )
    # The rest still links up: without an outside anchor a cut-off tail looks like a shorter log.
    assert _verify(cli_app, log_path)[0] == 0
    code, lines = _verify(cli_app, log_path, "--head", recorded)
    assert code == 1
    assert (
        lines[0]
        == f"TAMPERED outside the chain: the recorded head {recorded[:16]}... is not in the chain (rewritten or cut)"
    )


def test_an_existing_log_is_chained_on_first_open(cli_app: typer.Typer, log_path: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    shutil.copy(log_path, old)
    # A log from before the chain: no chain table (nor its triggers).
    _attack(old, "DROP TABLE disclosure_chain")
    code, lines = _verify(cli_app, old)
    assert (code, lines[0]) == (
        1,
        "TAMPERED outside the chain: the log has no hash chain yet: it is added when the publisher next opens it",
    )
    DisclosureLog(old).close()  # the publisher's (writable) open migrates it
    code, lines = _verify(cli_app, old)
    assert code == 0 and lines[0].startswith("ok: 6 rows chained")
    # From then on, new rows extend the migrated chain and tampering is found.
    log = DisclosureLog(old)
    log.append([_entry(4)])
    log.close()
    assert _verify(cli_app, old)[1][0].startswith("ok: 7 rows chained")
    _attack(old, "DELETE FROM disclosures WHERE message_id = 'm-1'")
    assert _verify(cli_app, old)[1][0] == "TAMPERED position 1: entry m-1 was deleted"
