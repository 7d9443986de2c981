"""The pinned Node tools of the test suite (tests/node: Ajv, ajv-formats, Redocly CLI).

`make install` runs `npm ci` there; a test that needs the tools calls `node_tools()`, which installs them
from the lock file when that has not happened yet. Without node/npm the test fails under CI=true and is
skipped on a developer machine (as the Kafka broker fixture does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def node_tools() -> Path:
    """The folder holding package.json and an installed node_modules/ (installed here if missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = "node and npm are needed for the Ajv and Redocly checks (apt-get install nodejs npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not (NODE_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600, capture_output=True
        )
    return NODE_DIR
