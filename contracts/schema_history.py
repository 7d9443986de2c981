"""Released versions of the committed schemas, read from git history, and their compatibility report.

A version is *released* when a commit on the main line (first parent) changed the file. Checking the
working tree's schema against every one of them is Confluent's "transitive" compatibility.
Used by tests/contract/test_schema_history.py and documented in docs/contracts.md.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.compat import Mode, breaks
from contracts.schema_export import SCHEMA_DIR, SCHEMAS

#: Outputs: consumers read old records (compacted topics, replays) and new ones with either schema.
#: Inputs: our services must accept what producers built against any earlier version.
MODES = {spec.file_name: Mode.FULL if spec.mode == "serialization" else Mode.BACKWARD for spec in SCHEMAS}


@dataclass(frozen=True)
class Break:
    """One incompatibility of the current schema with a released version."""

    file_name: str
    commit: str
    reasons: tuple[str, ...]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def released_ref(repo: Path, main: str = "main") -> str:
    """Where released history ends: the fork point from `main` (HEAD itself when on main or without it)."""
    try:
        return _git(repo, "merge-base", "HEAD", main).strip()
    except subprocess.CalledProcessError:
        return _git(repo, "rev-parse", "HEAD").strip()


def released_versions(repo: Path, rel_path: str, ref: str) -> list[tuple[str, dict[str, Any]]]:
    """(commit, schema) of every main-line commit up to `ref` that changed `rel_path`, newest first."""
    commits = _git(repo, "log", "--first-parent", "--format=%H", ref, "--", rel_path).split()
    out = []
    for commit in commits:
        try:
            text = _git(repo, "show", f"{commit}:{rel_path}")
        except subprocess.CalledProcessError:  # the commit deleted the file
            continue
        out.append((commit, json.loads(text)))
    return out


def history_breaks(repo: Path, schema_dir: Path = SCHEMA_DIR, ref: str | None = None) -> list[Break]:
    """Every (schema, released version up to `ref`) pair the schemas in `schema_dir` break, under MODES."""
    ref = ref or released_ref(repo)
    found = []
    for spec in SCHEMAS:
        path = schema_dir / spec.file_name
        if not path.exists():
            continue
        current = json.loads(path.read_text(encoding="utf-8"))
        rel = str((SCHEMA_DIR / spec.file_name).relative_to(repo))
        for commit, old in released_versions(repo, rel, ref):
            # Judged by declared fields, read with unknown fields ignored (docs/contracts.md).
            reasons = breaks(current, old, MODES[spec.file_name], declared_only=True)
            if reasons:
                found.append(Break(spec.file_name, commit, tuple(reasons)))
    return found
