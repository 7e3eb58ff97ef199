"""Keeping configured secrets inside the process: every text that leaves it (logs, job errors, events, dead
letters, API answers) passes through `redact`, which replaces each secret with a placeholder.

Some providers quote the key they were given ("Incorrect API key provided: sk-..."), and a traceback may show
a connection URL with its password, so redacting at the few places where text leaves is safer than trusting
every message to be clean. The secrets are the values of the variables syllabus.config names as secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from urllib.parse import quote

PLACEHOLDER = "[redacted]"
# Shorter values are not redacted: replacing every "admin" in every log line would garble the text while
# protecting nothing a guess would not find.
MIN_SECRET_LENGTH = 6


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                # As written, as it appears inside a URL or a query string, and inside a JSON string.
                forms.update({secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]})
        # Longest first, so a secret that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, PLACEHOLDER)
        return text


_active = Redactor()


def install(secrets: Iterable[str]) -> None:
    """Make these the secrets `redact` removes, for the whole process (done once, by logging set-up)."""
    global _active
    _active = Redactor(secrets)


def redact(text: str) -> str:
    return _active(text)


class RedactingFormatter(logging.Formatter):
    """Formats with another formatter, then redacts the whole line: message, arguments and traceback alike."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self._inner.format(record))
