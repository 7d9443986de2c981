"""Test-only entry point: the linker service with the fake engine (`FakeMemberLinker`, tests/support/linker.py).

`python -m tests.support.fake_linker` runs the real worker (`services.linker.runner.run_worker`, settings
from the REGSOSEK_LINKER_* variables as in production) with the fake injected over the JSON list of
master persons named by REGSOSEK_LINKER_FAKE_MASTER_PATH; `--log-level LEVEL` (default info) as
`regsosek serve linker`. The shipped package has no such switch: the
fake can only be started from a checkout, through this module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from services.linker.errors import LinkerConfigError
from services.linker.runner import run_worker
from services.linker.settings import LinkerSettings
from services.privacy.log_redaction import install_log_redaction
from tests.support.linker import FakeMasterPerson, FakeMemberLinker

#: The variable naming the fake's master file (a JSON list of `FakeMasterPerson` fields).
FAKE_MASTER_ENV = "REGSOSEK_LINKER_FAKE_MASTER_PATH"


def load_fake_master(path: Path) -> list[FakeMasterPerson]:
    """The master persons of a fake master file; a one-line error when it cannot be read."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LinkerConfigError(f"cannot read the fake master {path}: {exc}") from exc
    return [FakeMasterPerson(**row) for row in rows]


def fake_master_path() -> Path:
    """The fake master file the environment names; exit 2 when it names none."""
    value = os.environ.get(FAKE_MASTER_ENV)
    if not value:
        print(f"fake linker: set {FAKE_MASTER_ENV} to a JSON list of master persons", file=sys.stderr)
        raise SystemExit(2)
    return Path(value)


def main() -> None:
    """Run the worker with the fake engine; configuration errors exit with status 2 and one line."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_linker")
    parser.add_argument("--log-level", default="info", help="log level of the worker")
    args = parser.parse_args()
    install_log_redaction()
    try:
        settings = LinkerSettings()
    except ValidationError as exc:
        print(f"fake linker: invalid settings: {exc.errors()}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        people = load_fake_master(fake_master_path())
        run_worker(settings, loglevel=args.log_level, linker=FakeMemberLinker.of(people), master_records=len(people))
    except LinkerConfigError as exc:
        print(f"fake linker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
