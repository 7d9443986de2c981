"""Offline checks with Debian's `promtool`: PromQL parsing, rule unit tests, configuration checks.

Used by the monitoring tests and usable by hand. `promtool` has no "parse this expression" command, so
expressions are checked by wrapping each in a recording rule and running `promtool check rules`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's `prometheus` package installs its binaries (also found on PATH).
DEBIAN_BIN = Path("/usr/bin")


class PromtoolMissing(RuntimeError):
    """Debian's prometheus package is not installed; `apt-get install -y prometheus` (or `make install`)."""


@dataclass(frozen=True)
class PromtoolResult:
    """Exit status and combined output of one promtool run."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """True when promtool succeeded."""
        return self.returncode == 0


def find_binary(name: str) -> Path | None:
    """The path of `prometheus` or `promtool`, or None when not installed."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidate = DEBIAN_BIN / name
    return candidate if candidate.is_file() else None


def run_promtool(*args: str, timeout_s: float = 60.0) -> PromtoolResult:
    """Run `promtool ARGS...`; raises PromtoolMissing when it is not installed."""
    binary = find_binary("promtool")
    if binary is None:
        raise PromtoolMissing("promtool not found: install Debian's prometheus package (`make install`)")
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    return PromtoolResult(proc.returncode, proc.stdout + proc.stderr)


def check_expressions(expressions: Sequence[str]) -> PromtoolResult:
    """Parse every PromQL expression (as recording rules) with `promtool check rules`."""
    rules = [{"record": f"check:expression_{i}", "expr": expr} for i, expr in enumerate(expressions)]
    document = {"groups": [{"name": "expressions", "rules": rules}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expressions.yml"
        path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
        return run_promtool("check", "rules", str(path))
