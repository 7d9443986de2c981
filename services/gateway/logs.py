"""The gateway's log output: one record is one line, whatever characters a request put into it.

The contract already limits identifiers to a safe character set, but log records also carry text the
gateway does not control (uvicorn's request lines, exception messages). Both formatters here escape
every control character, so a CR/LF cannot forge a log line and an ANSI escape cannot repaint a terminal:

* `EscapingFormatter` (text, the default): the usual `time level logger: message` line, with control
  characters written as Python escapes (`\\r`, `\\n`, `\\x1b`, `\\u2028`). A traceback becomes part of
  the same line.
* `JsonFormatter` (`--log-format json`): one JSON object per line (`time`, `level`, `logger`,
  `message`, and `exception` when there is one), for log shippers.

`logging_config` builds the `logging.config.dictConfig` mapping that `regsosek serve gateway` hands to
uvicorn, so uvicorn's own loggers go through the same formatter as the gateway's. Its handler carries
`RequestIdFilter`, so a record written while a request is handled ends with ` request_id=<id>` (text) or
has a `request_id` member (JSON): the id the client got in its X-Request-ID header.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

LogFormat = Literal["text", "json"]


def escape_controls(text: str) -> str:
    """`text` with every control character replaced by its Python escape (`\\n`, `\\x1b`, ...)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    """A text formatter whose output is always one line without control characters."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", "-")
        return escape_controls(line if request_id == "-" else f"{line} request_id={request_id}")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; JSON string escaping covers every control character."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def logging_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """A `dictConfig` mapping: every logger (the gateway's and uvicorn's) to stderr through one formatter."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if log_format == "json"
        else {"()": f"{__name__}.EscapingFormatter", "fmt": TEXT_FORMAT}
    )
    level = level.upper()
    # uvicorn's loggers keep no handlers of their own and propagate to the root handler.
    uvicorn = {"handlers": [], "level": level, "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gateway": formatter},
        "filters": {"request_id": {"()": "services.gateway.request_id.RequestIdFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "gateway",
                "stream": "ext://sys.stderr",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {name: dict(uvicorn) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
