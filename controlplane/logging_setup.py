"""Logging: one format, tenant/run context, and redaction of anything that looks like a secret."""

from __future__ import annotations

import logging
import re
import sys

# Values after these words, and URL passwords, are replaced before a record is written.
_SECRET_PATTERNS = [
    re.compile(r"(?i)\b(password|passwd|token|secret(?:_id)?|api[_-]?key|x-auth-token|"
               r"x-vault-token|authorization)(\"?\s*[:=]\s*\"?)([^\s\"',&}]+)"),
    re.compile(r"(?i)(://[^:/@\s]+:)([^@\s]+)(@)"),
    re.compile(r"\b(hvs|s|b)\.[A-Za-z0-9_-]{20,}\b"),  # Vault / OpenBao tokens
]


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}***{m.group(3)}", text)
    return _SECRET_PATTERNS[2].sub("***", text)


class RedactingFilter(logging.Filter):
    """Redacts secrets from the formatted message (arguments included) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for name in ("tenant", "run_id"):
            if not hasattr(record, name):
                setattr(record, name, "-")
        return True


FORMAT = "%(asctime)s %(levelname)s %(name)s [tenant=%(tenant)s run=%(run_id)s] %(message)s"


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library loggers at INFO print request URLs with tokens in them.
    for noisy in ("keystoneauth", "openstack", "urllib3", "hvac"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
