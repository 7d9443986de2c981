"""The gateway's OpenAPI document passes Redocly's `recommended` rules with no error and no warning
(the pinned @redocly/cli in tests/node), and the lint does catch a regression."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from tests.node_tools import node_tools
from tests.support.gateway import FakeSubmissionProducer


def _document() -> dict[str, Any]:
    app = build_app(GatewaySettings(tokens={"team-token-0123456789abcdef": "t"}), producer=FakeSubmissionProducer())
    return app.openapi()


def _lint(document: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    tools = node_tools()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    done = subprocess.run(
        [str(tools / "node_modules" / ".bin" / "redocly"), "lint", "--format=json", str(path)],
        cwd=tools,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _rules(report: dict[str, Any]) -> list[str]:
    return sorted(p["ruleId"] for p in report["problems"])


def test_the_gateway_openapi_is_clean_under_redocly_recommended(tmp_path: Path) -> None:
    report = _lint(_document(), tmp_path)
    assert _rules(report) == []
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}


def test_the_lint_catches_the_problems_issue_14_found(tmp_path: Path) -> None:
    document = _document()
    del document["servers"]
    for path in ("/healthz", "/readyz"):
        del document["paths"][path]["get"]["security"]
    report = _lint(document, tmp_path)
    assert _rules(report) == ["no-empty-servers", "security-defined", "security-defined"]
    assert report["totals"]["errors"] == 3


def test_error_answers_are_documented_as_problem_json() -> None:
    responses = _document()["paths"]["/v1/submissions"]["post"]["responses"]
    for status, response in responses.items():
        expected = "application/json" if status.startswith("2") else "application/problem+json"
        assert list(response["content"]) == [expected], status
