"""Review app parts: accounts file and CLI, NIK decoding and masking, waterfall, ingest parsing, metrics."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import typer
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from contracts.review_decisions import ReviewerRole
from services.review.ingest import _parse
from services.review.metrics import ReviewMetrics, route_of
from services.review.nik import decode_nik, mask_nik, nik_mismatches
from services.review.store import ReviewStore
from services.review.users import UserFileError, UserStore
from services.review.views import waterfall
from tests.support.metrics import FORBIDDEN_LABELS
from tests.support.review import CANDIDATE_NIKS, PASSWORD, sample_task


def test_accounts_keep_only_a_salted_hash_and_verify_role_and_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    store = UserStore({})
    store.add("rina", PASSWORD, ReviewerRole.SUPERVISOR)
    store.save(path)
    assert PASSWORD not in path.read_text() and oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = UserStore.load(path)
    reviewer = loaded.verify("rina", PASSWORD)
    assert reviewer is not None and reviewer.role is ReviewerRole.SUPERVISOR
    assert loaded.verify("rina", PASSWORD + "x") is None and loaded.verify("budi", PASSWORD) is None
    with pytest.raises(UserFileError, match="at least 10"):
        store.add("budi", "short", ReviewerRole.REVIEWER)
    with pytest.raises(UserFileError, match="user id"):
        store.add("Budi Santoso", PASSWORD, ReviewerRole.REVIEWER)
    path.write_text('{"users": {"x": {"role": "admin"}}}')
    with pytest.raises(UserFileError):
        UserStore.load(path)


def test_cli_adds_users_and_serve_refuses_without_accounts(cli_app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "users.json"
    added = runner.invoke(
        cli_app,
        ["review", "users", "add", "sari", "--role", "supervisor", "--users-file", str(path), "--password-env", "PW"],
        env={"PW": PASSWORD},
    )
    assert added.exit_code == 0, added.output
    assert json.loads(path.read_text())["users"]["sari"]["role"] == "supervisor"
    missing = runner.invoke(
        cli_app, ["review", "users", "add", "x1", "--users-file", str(path), "--password-env", "NOPE"], env={"NOPE": ""}
    )
    assert missing.exit_code == 2
    empty = runner.invoke(
        cli_app, ["serve", "review", "--users-file", str(tmp_path / "none.json"), "--state", str(tmp_path / "s.sqlite")]
    )
    assert empty.exit_code == 2 and "no reviewer accounts" in " ".join(empty.output.replace("│", " ").split())


def test_nik_is_decoded_masked_by_role_and_mismatches_named() -> None:
    member, woman, younger = (decode_nik(n) for n in CANDIDATE_NIKS)
    assert member is not None and (member.region_code, member.birth_date, member.sex) == ("36.03.12", "1980-05-15", "M")
    assert woman is not None and woman.sex == "F"
    assert nik_mismatches(member, woman) == {"sex"} and nik_mismatches(member, younger) == {"birth_date"}
    assert nik_mismatches(member, None) == frozenset() and decode_nik("123") is None
    assert mask_nik(CANDIDATE_NIKS[0], ReviewerRole.REVIEWER) == "360312" + "•" * 10
    assert mask_nik(CANDIDATE_NIKS[0], ReviewerRole.SUPERVISOR) == CANDIDATE_NIKS[0]


def test_waterfall_runs_from_the_prior_to_the_total_weight() -> None:
    bars = waterfall(1.5, {"name": 2.0, "sex": -0.5, "birth_date": 1.0})
    assert [(b["label"], b["value"]) for b in bars] == [
        ("prior", -1.0),
        ("name", 2.0),
        ("birth_date", 1.0),
        ("sex", -0.5),
        ("total", 1.5),
    ]
    assert all(0 <= b["left"] <= 100 and b["left"] + b["width"] <= 100.5 for b in bars)
    assert waterfall(None, {}) == []


def test_unreadable_records_are_kept_with_a_reason_and_no_payload(tmp_path: Path) -> None:
    parsed, reason = _parse("review", b'{"task_id": "3603121505800002"}')
    assert parsed is None and reason.startswith("invalid: ") and "3603121505800002" not in reason
    store = ReviewStore(tmp_path / "s.sqlite")
    store.ingest([("review", sample_task(1), 0)], {("t", 0): 2}, [("t", 0, 1, reason)])
    assert store.rejected_count() == 1 and store.open_count() == 1 and store.offsets() == {("t", 0): 2}


def test_metrics_have_bounded_conventional_labels() -> None:
    registry = CollectorRegistry()
    ReviewMetrics(registry)
    families = [f for f in registry.collect() if f.name.startswith("regsosek_review")]
    assert len(families) >= 6
    for family in families:
        assert re.fullmatch(r"regsosek_[a-z0-9_]+", family.name) and family.documentation
        labels = {name for sample in family.samples for name in sample.labels}
        assert not labels & (FORBIDDEN_LABELS | {"district", "village", "reviewer", "task_id"}), family.name
    assert route_of("/tasks/3603010001000100001001-01%2Fr1") == "/tasks" and route_of("/wp-admin") == "other"


def test_parquet_master_finds_candidates_and_their_kk(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from services.review.master import ParquetMaster
    from tests.support.review import sample_master

    rows = list(sample_master().persons(list(CANDIDATE_NIKS)).values())
    table = pa.Table.from_pylist([{**r, "birth_date": dt.date.fromisoformat(r["birth_date"])} for r in rows])
    pq.write_table(table, tmp_path / "population.parquet")
    master = ParquetMaster(tmp_path / "population.parquet")
    found = master.persons([CANDIDATE_NIKS[1], "3603121505809999"])
    assert list(found) == [CANDIDATE_NIKS[1]] and found[CANDIDATE_NIKS[1]]["birth_date"] == "1980-05-15"
    assert [r["nik"] for r in master.kk_members("3603121705150003")] == list(CANDIDATE_NIKS[:2])
    assert master.persons([]) == {}
    with pytest.raises(FileNotFoundError):
        ParquetMaster(tmp_path / "missing.parquet")
