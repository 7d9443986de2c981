"""`regsosek serve linker --decisions` turns the decisions reader on (the worker itself is not started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner


@pytest.mark.parametrize(("flag", "expected"), [("--decisions", True), ("--no-decisions", False), (None, False)])
def test_the_decisions_flag_reaches_the_settings(
    cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: str | None, expected: bool
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr("services.linker.runner.run_worker", lambda settings, **_: seen.append(settings))
    monkeypatch.delenv("REGSOSEK_LINKER_DECISIONS_ENABLED", raising=False)
    args = ["serve", "linker", "--state-dir", str(tmp_path / "s")]
    result = CliRunner().invoke(cli_app, [*args, *([flag] if flag else [])])
    assert result.exit_code == 0, result.output
    assert [s.decisions_enabled for s in seen] == [expected]
