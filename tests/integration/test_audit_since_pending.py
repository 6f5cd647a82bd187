"""The window in which an event can be deleted before it is sequenced is bounded: the worker's
sequencer runs on its own short timer, and `audit check` names events left waiting longer than
`audit_pending_window_seconds`."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from controlplane.audit.check import check_log
from controlplane.audit.sequencer import pending_count, sequence_forever, with_sequencer
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.vault import DevVault
from tests.integration.audit_helpers import (
    add_events,
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

pytestmark = pytest.mark.integration


def test_the_sequencer_timer_sequences_events_within_seconds(
    database: Database, audit_keys: KeyBackend, settings: Settings
) -> None:
    stop = threading.Event()
    thread = sequence_forever(with_sequencer(None, audit_keys, pin_path=pinned(settings)), database,
                              every=0.2, stop=stop)
    try:
        add_events(database, 5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with database.transaction() as s:
                if pending_count(s) == 0:
                    break
            time.sleep(0.1)
        with database.transaction() as s:
            assert pending_count(s) == 0
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_audit_check_names_events_waiting_longer_than_the_window(
    database: Database, settings: Settings, vault_server: DevVault, controlplane_token: str
) -> None:
    add_events(database, 3)
    assert check_log(database, pending_window=timedelta(seconds=60)).faults == []
    with database.transaction() as s:  # the sequencer has been stopped for two minutes
        s.execute(text("UPDATE audit_events SET occurred_at = occurred_at - INTERVAL '120 seconds'")
                  if database.engine.dialect.name == "postgresql" else
                  text("UPDATE audit_events SET occurred_at = datetime(occurred_at, '-120 seconds')"))
    first = check_log(database, pending_window=timedelta(seconds=60)).first
    assert first is not None and first.kind == "unsequenced" and "3 event(s)" in first.message
    env = {
        **settings_env(settings, vault_token=controlplane_token),
        "CONTROLPLANE_VAULT_ADDR": vault_server.addr,
    }
    checked = run_controlplane("audit", "check", env=env)
    assert checked.returncode == 1 and "FAULT unsequenced" in checked.stderr, checked.stderr
    assert "no witness key pinned" in checked.stdout
