"""Secrets never reach a log line, whatever shape they arrive in."""

from __future__ import annotations

import io
import logging

import pytest

from controlplane.logging_setup import FORMAT, RedactingFilter, redact


@pytest.mark.parametrize("line, secret", [
    ("login with password=hunter2-secret ok", "hunter2-secret"),
    ('{"token": "gAAAAABk-abc"}', "gAAAAABk-abc"),
    ("X-Auth-Token: 8f1e2d3c4b5a", "8f1e2d3c4b5a"),
    ("connect postgresql://cp:pg-pass-123@db/cp", "pg-pass-123"),
    ("vault said hvs.CAESIJ1234567890abcdefghijklmnop", "hvs.CAESIJ1234567890abcdefghijklmnop"),
    ("secret_id=7c1b-44aa-secret", "7c1b-44aa-secret"),
])
def test_redact_removes_the_secret(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_filter_redacts_arguments_of_a_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("auth failed for %s with password=%s", "alice", "correct-horse")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "alice" in out and "correct-horse" not in out and "password=***" in out
