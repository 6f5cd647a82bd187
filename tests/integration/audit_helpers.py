"""Shared by the audit log tests: real audit keys in OpenBao (removed after each test) and a log
of events sequenced into signed checkpoints.

A test module takes the `audit_keys` fixture by importing it:
`from tests.integration.audit_helpers import audit_keys_fixture  # noqa: F401 (the audit_keys fixture)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.audit import record_event
from controlplane.audit.checkpoints import AUDIT_KEY, PINNED_KEY_FILE
from controlplane.audit.sequencer import run_sequencer
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from tests.fixtures.vault import VaultJanitor


@pytest.fixture(name="audit_keys")
def audit_keys_fixture(
    vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]
) -> KeyBackend:
    """The control plane's Vault adapter, with the audit key it makes destroyed after the test (the
    witness's key is not in this Vault: tests.fixtures.witness)."""
    janitor = make_vault_janitor(vault_keys)
    janitor.key(AUDIT_KEY)
    return vault_keys


def add_events(db: Database, count: int, *, start: int = 0) -> None:
    with db.transaction() as s:
        for n in range(start, start + count):
            record_event(
                s,
                action="account:create",
                initiator="user:admin",
                target=f"user:{n}",
                org="health" if n % 2 else "",
                detail={"n": n, "note": "é"},
            )


def pinned(settings: Settings) -> Path:
    return Path(settings.instance_path) / PINNED_KEY_FILE


def build_log(db: Database, keys: KeyBackend, settings: Settings, sizes: tuple[int, ...] = (5, 4, 3)) -> None:
    """Events in batches, each batch sequenced and signed: one checkpoint per batch."""
    done = 0
    for count in sizes:
        add_events(db, count, start=done)
        done += count
        run_sequencer(db, keys, pin_path=pinned(settings))
