"""Keep NIKs, KK numbers and names out of log output, including the Kafka client libraries' DEBUG lines.

kafka-python, aiokafka and faust log every record they send at DEBUG with its key and value
("Sending (key=... value=...)", "send: topic=... k=... v=..."), and the values are submissions and
linkage outputs full of NIKs and names. `install_log_redaction()` installs a log-record factory (so
it works whatever handlers are configured, pytest's included) that
- replaces bytes arguments of those libraries' records with their length (`<512 bytes>`), and
- replaces any run of exactly 16 digits (the shape of a NIK and a KK number) in any record's message.
Every CLI entry point calls it (services/cli.py); services started another way must call it too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

#: Loggers of third-party clients that put record payloads into DEBUG messages.
PAYLOAD_LOGGERS: tuple[str, ...] = ("kafka", "aiokafka", "faust", "mode")
_SIXTEEN_DIGITS = re.compile(r"(?<!\d)\d{16}(?!\d)")
REDACTED_16 = "<16 digits>"

_installed: list[Callable[..., logging.LogRecord]] = []


def redact_text(text: str) -> str:
    """`text` with every run of exactly 16 digits replaced."""
    return _SIXTEEN_DIGITS.sub(REDACTED_16, text)


class _Size:
    """Stands in for a payload: prints as `<N bytes>` with %s and %r alike."""

    def __init__(self, size: int) -> None:
        self.text = f"<{size} bytes>"

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _safe_arg(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return _Size(len(value))
    return value


def _from_payload_logger(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PAYLOAD_LOGGERS)


def install_log_redaction() -> None:
    """Install the redacting log-record factory once per process (idempotent)."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            if record.args and _from_payload_logger(record.name):
                if isinstance(record.args, tuple):
                    record.args = tuple(_safe_arg(a) for a in record.args)
                elif isinstance(record.args, dict):
                    record.args = {k: _safe_arg(v) for k, v in record.args.items()}
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must not break logging; leave it as it is
            return record
        if _SIXTEEN_DIGITS.search(message):
            record.msg, record.args = redact_text(message), ()
        return record

    _installed.append(previous)
    logging.setLogRecordFactory(factory)


def uninstall_log_redaction() -> None:
    """Restore the previous factory (tests)."""
    if _installed:
        logging.setLogRecordFactory(_installed.pop())
