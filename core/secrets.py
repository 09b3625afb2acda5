"""Keep passwords out of everything dbr shows, logs or records."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL, make_url

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a secret, and the ways URLs escape it, so redact() removes it."""
    if not secret or len(secret) < 3:
        return
    rendered = URL.create("x", username="u", password=secret, host="h")
    in_url = rendered.render_as_string(hide_password=False)[len("x://u:") : -len("@h")]
    forms = {secret, in_url, quote(secret, safe=""), quote_plus(secret)}
    with _lock:
        _secrets.update(forms)


def redact(text: str) -> str:
    """Replace every registered secret in text by the mask."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    """redact() through the strings of a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def display_url(url: str | URL) -> str:
    """A URL as dbr shows it: the password masked, never the raw text."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.password:
        register(str(parsed.password))
    return redact(parsed.render_as_string(hide_password=True))


class RedactingFilter(logging.Filter):
    """Masks registered secrets in every log record that passes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
