"""`python -m services.linker`: run the linker with settings from REGSOSEK_LINKER_* environment variables."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from services.linker.errors import LinkerConfigError
from services.linker.runner import run_worker
from services.linker.settings import LinkerSettings
from services.privacy.log_redaction import install_log_redaction


def main() -> None:
    """Entry point; configuration errors exit with status 2 and a message, without a traceback."""
    install_log_redaction()  # faust/aiokafka log every record's key and value at DEBUG
    try:
        settings = LinkerSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"REGSOSEK_LINKER_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        print(f"regsosek linker: invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        run_worker(settings)
    except LinkerConfigError as exc:
        print(f"regsosek linker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
