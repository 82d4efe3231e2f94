"""Logging in logfmt (Heroku's convention), with secrets scrubbed as a last line of defence.

Log calls already write `key=value` pairs; this adds `level=` and `logger=` in front and
makes sure no Slack token or bearer key slips through, whatever a library logs.
"""

from __future__ import annotations

import logging
import re
import sys

SECRET_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(inference_key=|api_key=|password=)[^\s&]+"),
]


def scrub(text: str) -> str:
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        line = f"level={record.levelname.lower()} logger={record.name} {message}"
        if record.exc_info and record.levelno >= logging.ERROR:
            # Exception type only: tracebacks can carry message text and payloads.
            line += f" exception={record.exc_info[0].__name__ if record.exc_info[0] else 'unknown'}"
        return line


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries log request bodies at DEBUG; keep them at WARNING unless we debug ourselves.
    for noisy in ("slack_sdk", "slack_bolt", "httpx", "httpcore", "urllib3", "sqlalchemy", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.INFO if level == "DEBUG" else logging.WARNING)
