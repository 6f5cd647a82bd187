"""Whoever holds the database cuts the log (events, tree nodes, checkpoints, tree state, by direct
SQL) and grows it again: `audit check` alone sees a consistent log, but the witness refuses the next
checkpoint, and `audit check --since` / `--since-witness` and `audit verify --since` exit 1 naming
the truncation or the rewritten history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select, text

from controlplane.audit.check import check_log
from controlplane.audit.checkpoints import DEFAULT_ORIGIN, read_pinned_keys
from controlplane.audit.models import AuditCheckpoint
from controlplane.audit.pinning import parse_since
from controlplane.audit.proofs import root_at
from controlplane.audit.sequencer import with_sequencer
from controlplane.audit.witnessing import WitnessLink, WitnessRefused, cosign_latest
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.vault import DevVault
from tests.fixtures.witness import RunningWitness, log_vkeys
from tests.integration.audit_helpers import (
    add_events,
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

pytestmark = pytest.mark.integration
KEEP = 4  # leaves the attacker keeps


def truncate(database: Database, keep: int) -> None:
    """What someone with the database does: cut every row past `keep` leaves and make the state agree."""
    with database.transaction() as s:
        root = root_at(s, keep)
        s.execute(text("DELETE FROM audit_events WHERE leaf_index >= :k"), {"k": keep})
        s.execute(text("DELETE FROM audit_tree_nodes WHERE (idx + 1) * (1 << level) > :k"), {"k": keep})
        s.execute(text("DELETE FROM audit_checkpoints WHERE tree_size > :k"), {"k": keep})
        s.execute(text("UPDATE audit_tree_state SET tree_size = :k, root_hash = :r"), {"k": keep, "r": root})


def test_truncation_and_regrowth_are_refused_by_the_witness_and_fail_check_and_verify(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    make_witness: Callable[..., RunningWitness],
    vault_server: DevVault,
    controlplane_token: str,
    tmp_path: Path,
) -> None:
    witness = make_witness({DEFAULT_ORIGIN: log_vkeys(audit_keys)})
    link = WitnessLink(witness.url, (witness.verifier,))
    sequence = with_sequencer(None, audit_keys, pin_path=pinned(settings), witness=link)
    add_events(database, 6)
    sequence(database)
    add_events(database, 4, start=6)
    sequence(database)
    with database.transaction() as s:
        cps = list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)))
    assert [(cp.tree_size, cp.cosignature is not None) for cp in cps] == [(6, True), (10, True)]
    since = f"10:{cps[-1].root_hash.hex()}"
    env = {
        **settings_env(settings, vault_token=controlplane_token),
        "CONTROLPLANE_VAULT_ADDR": vault_server.addr,
        "CONTROLPLANE_WITNESS_URL": witness.url,
        "CONTROLPLANE_WITNESS_VKEY": witness.vkey,
    }

    truncate(database, KEEP)
    keys = read_pinned_keys(pinned(settings))
    assert check_log(database, pinned_audit_keys=keys).faults == []  # the database alone looks fine
    cut = run_controlplane("audit", "check", "--since", since, env=env)
    assert cut.returncode == 1 and "FAULT truncated" in cut.stderr, cut.stderr
    assert "has 4 leaves" in cut.stderr

    add_events(database, 7, start=100)  # new events: the log regrows past the pinned size
    sequence(database)  # signs size 11; the witness refuses it (logged), nothing co-signed
    with database.transaction() as s:
        latest = s.scalar(select(AuditCheckpoint).where(AuditCheckpoint.tree_size == 11))
        assert latest is not None and latest.cosignature is None
    with pytest.raises(WitnessRefused, match="HTTP 422"):
        cosign_latest(database, link)

    for args in (("--since", since), ("--since-witness", witness.url)):
        checked = run_controlplane("audit", "check", *args, env=env)
        assert checked.returncode == 1, checked.stdout
        assert "FAULT regrown" in checked.stderr and "history was rewritten" in checked.stderr
    bundle = tmp_path / "after.tar.gz"
    assert run_controlplane("audit", "export", "--output", str(bundle), env=env).returncode == 0
    plain = run_controlplane("audit", "verify", str(bundle), env=env)
    assert plain.returncode == 0, plain.stderr  # self-consistent: only a pinned checkpoint catches it
    for args in (("--since", since), ("--since-witness", witness.url)):
        verified = run_controlplane("audit", "verify", str(bundle), *args, env=env)
        assert verified.returncode == 1 and "FAULT regrown" in verified.stderr, verified.stderr


def test_a_fork_at_the_pinned_size_fails_check(
    database: Database, audit_keys: KeyBackend, settings: Settings
) -> None:
    sequence = with_sequencer(None, audit_keys, pin_path=pinned(settings))
    add_events(database, 5)
    sequence(database)
    with database.transaction() as s:
        real = root_at(s, 5)
    truncate(database, 3)
    add_events(database, 2, start=50)
    sequence(database)
    report = check_log(database, since=parse_since(f"5:{real.hex()}"))
    assert report.first is not None and report.first.kind == "fork"
