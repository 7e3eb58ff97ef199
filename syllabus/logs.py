"""Logging set-up shared by every process: text for people, JSON lines for machines."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from syllabus import redaction
from syllabus.config import CommonConfig


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


# Libraries that narrate their routine work at INFO (fontTools: a hundred lines per PDF's font subset; httpx:
# every model request): at the default level only their warnings are worth a person's attention.
CHATTY_LIBRARIES = ("fontTools", "fpdf", "httpx", "httpcore", "google_genai", "markdown_it", "urllib3")


def setup_logging(config: CommonConfig, process: str) -> None:
    redaction.install(config.secrets)
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        formatter: logging.Formatter = _JsonFormatter()
    else:
        formatter = logging.Formatter(f"%(asctime)s {process:<9} %(levelname)-7s %(name)s: %(message)s")
    handler.setFormatter(redaction.RedactingFormatter(formatter))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())
    # nats-py logs every reconnect attempt at error level; ours say what matters.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if config.log_level == "debug" else logging.WARNING)
