"""How the log is written: plain lines for a person, or one JSON object per
event for a log collector (``--log-format json``).

Either way every event is one line: a traceback goes inside the event (JSON:
its ``exc`` field), never on lines of its own that a collector would read as
events of their own.
"""

from __future__ import annotations

import datetime
import json
import logging

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (UTC, ISO 8601 with milliseconds),
    ``level``, ``logger``, ``message``, and ``exc`` with the traceback when
    the event has one."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: the line stays one line whatever a message holds.
        return json.dumps(event, ensure_ascii=True)


def configure(level: str, fmt: str) -> None:
    """Send every event at ``level`` or above to stderr, as ``fmt`` says
    ("text" or "json")."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
