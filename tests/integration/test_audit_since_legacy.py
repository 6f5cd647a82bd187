"""Checkpoints stored before C2SP notes (revision 0014: the old text with a `time` line, and the old
same-Vault co-signature) still verify in `audit check` and in an exported bundle, next to new ones;
and a pinned checkpoint is checked across both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from controlplane.audit.bundle import export_bundle
from controlplane.audit.check import check_log
from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    LEGACY_WITNESS_KEY,
    archive_keys,
    legacy_checkpoint_note,
    legacy_cosignature_note,
    read_pinned_keys,
)
from controlplane.audit.models import AuditCheckpoint, AuditTreeState
from controlplane.audit.pinning import Pinned
from controlplane.audit.sequencer import integrate_pending, run_sequencer
from controlplane.audit.verify import verify_bundle
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from tests.fixtures.vault import VaultJanitor
from tests.integration.audit_helpers import (
    add_events,
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

pytestmark = pytest.mark.integration


def test_legacy_checkpoints_still_verify_beside_c2sp_ones(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    make_vault_janitor: Callable[[KeyBackend], VaultJanitor],
    tmp_path: Path,
) -> None:
    make_vault_janitor(audit_keys).key(LEGACY_WITNESS_KEY)
    add_events(database, 4)
    integrate_pending(database)
    with database.transaction() as s:
        state = s.get(AuditTreeState, 1)
        assert state is not None
        size, root = state.tree_size, state.root_hash
    # a checkpoint as the code before revision 0014 signed and co-signed it
    signed_at = utcnow()
    note = legacy_checkpoint_note(size, root, signed_at)
    audit_keys.ensure_signing_key(AUDIT_KEY)
    audit_keys.ensure_signing_key(LEGACY_WITNESS_KEY)
    sig = audit_keys.sign(AUDIT_KEY, [note])[0]
    cosig = audit_keys.sign(LEGACY_WITNESS_KEY, [legacy_cosignature_note(note, signed_at)])[0]
    with database.transaction() as s:
        archive_keys(s, LEGACY_WITNESS_KEY, audit_keys.get_signing_key(LEGACY_WITNESS_KEY).public_keys)
        s.add(AuditCheckpoint(
            tree_size=size, root_hash=root, signed_at=signed_at, key_name=AUDIT_KEY,
            key_version=sig.key_version, signature=sig.signature, witness_key_name=LEGACY_WITNESS_KEY,
            witness_key_version=cosig.key_version, witness_signed_at=signed_at,
            witness_signature=cosig.signature,
        ))  # the audit key is archived (and pinned) by the next sequencer pass
    add_events(database, 3, start=4)
    run_sequencer(database, audit_keys, pin_path=pinned(settings))
    with database.transaction() as s:
        notes = [n for (n,) in s.execute(select(AuditCheckpoint.note).order_by(AuditCheckpoint.tree_size))]
    assert notes[0] is None and notes[1] is not None and notes[1].startswith("controlplane.local/audit\n7\n")
    keys = read_pinned_keys(pinned(settings))
    report = check_log(database, pinned_audit_keys=keys, since=Pinned(size, root, "test"))
    assert report.faults == [] and (report.checkpoints, report.witnessed) == (2, 1)
    exported = export_bundle(database, tmp_path / "b.tar.gz")
    verified = verify_bundle(exported.path, pinned_audit_keys=keys, since=Pinned(size, root, "test"))
    assert verified.faults == [] and (verified.checkpoints, verified.witnessed) == (2, 1)
    # and the legacy signature still binds: another root at that size fails
    with database.transaction() as s:
        row = s.scalar(select(AuditCheckpoint).where(AuditCheckpoint.tree_size == size))
        assert row is not None
        row.signed_at = row.signed_at.replace(microsecond=(row.signed_at.microsecond + 1) % 1_000_000)
    faults = check_log(database, pinned_audit_keys=keys).faults
    assert any("not signed by the (pinned) audit key" in f.message for f in faults)
