"""The audit log against a real database and a real OpenBao: sequencing, signed checkpoints, proofs,
the witness, `audit check` locating rows edited, deleted, reordered or inserted in the database,
two sequencers at once, and fail-closed writes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from controlplane.accounts.models import Role, User
from controlplane.accounts.service import create_user
from controlplane.audit.cadf import leaf_input, record_of, to_cadf
from controlplane.audit.check import check_log
from controlplane.audit.checkpoints import (
    AUDIT_KEY,
    DEFAULT_ORIGIN,
    archived_keys,
    checkpoint_signed_by,
    read_pinned_keys,
    witness_signed_by,
)
from controlplane.audit.models import AuditCheckpoint, AuditEvent
from controlplane.audit.proofs import prove_consistency, prove_inclusion
from controlplane.audit.sequencer import (
    integrate_pending,
    pending_count,
    sign_checkpoint,
    with_sequencer,
)
from controlplane.audit.witnessing import WitnessLink, WitnessRefused, cosign_latest
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tlog import merkle
from tests.fixtures.witness import RunningWitness, log_vkeys
from tests.integration.audit_helpers import (
    add_events,
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    build_log,
    pinned,
)

pytestmark = pytest.mark.integration


def test_checkpoints_are_signed_consistent_and_prove_every_leaf(
    database: Database, audit_keys: KeyBackend, settings: Settings
) -> None:
    build_log(database, audit_keys, settings, sizes=(5, 4, 3))
    assert sign_checkpoint(database, audit_keys) is None  # nothing new, nothing signed
    with database.transaction() as s:
        cps = list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)))
        keys = archived_keys(s, AUDIT_KEY)
        assert [cp.tree_size for cp in cps] == [5, 9, 12]
        assert all(checkpoint_signed_by(cp, keys) for cp in cps)
        assert list(keys.values()) == read_pinned_keys(pinned(settings))  # pinned on first use
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.leaf_index)))
        assert [e.leaf_index for e in events] == list(range(12))
        for e in events:
            assert to_cadf(e) == record_of(e)  # pycadf agrees with the leaf input's record
            proof = prove_inclusion(s, e.leaf_index or 0, 12)
            assert proof.leaf_hash == merkle.hash_leaf(leaf_input(e))
            assert merkle.verify_inclusion(
                proof.leaf_hash, proof.leaf_index, 12, proof.path, cps[-1].root_hash
            )
        for first, second in [(cps[0], cps[1]), (cps[1], cps[2]), (cps[0], cps[2])]:
            c = prove_consistency(s, first.tree_size, second.tree_size)
            assert merkle.verify_consistency(
                first.tree_size, second.tree_size, first.root_hash, second.root_hash, c.path
            )
    report = check_log(database, pinned_audit_keys=read_pinned_keys(pinned(settings)))
    assert report.faults == [] and report.checkpoints == 3 and report.tree_size == 12


def test_the_witness_cosigns_only_an_append_only_extension(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    make_witness: Callable[..., RunningWitness],
) -> None:
    witness = make_witness({DEFAULT_ORIGIN: log_vkeys(audit_keys)})
    link = WitnessLink(witness.url, (witness.verifier,))
    build_log(database, audit_keys, settings, sizes=(3,))
    first = cosign_latest(database, link)
    add_events(database, 4, start=3)
    integrate_pending(database)
    assert sign_checkpoint(database, audit_keys) is not None
    second = cosign_latest(database, link)
    assert first is not None and second is not None
    assert (first.tree_size, second.tree_size) == (3, 7)
    assert cosign_latest(database, link) is None  # nothing new to co-sign
    with database.transaction() as s:
        cps = list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)))
    assert all(witness_signed_by(cp, {}, [witness.verifier]) for cp in cps)
    # a checkpoint whose signed root was altered in the database is refused (the log's signature fails)
    add_events(database, 1, start=7)
    integrate_pending(database)
    assert sign_checkpoint(database, audit_keys) is not None
    with database.transaction() as s:
        s.execute(text("UPDATE audit_checkpoints SET note = :n WHERE tree_size = 8"),
                  {"n": f"{DEFAULT_ORIGIN}\n8\n{'A' * 43}=\n"})
    with pytest.raises(WitnessRefused, match="HTTP 403"):
        cosign_latest(database, link)


# Each change is made with plain SQL, as someone with database access would.
TAMPERING = {
    "edit a field": (["UPDATE audit_events SET outcome = 'failure' WHERE leaf_index = 6"], "edited", 6),
    "edit the detail": (["UPDATE audit_events SET org = 'defence' WHERE leaf_index = 2"], "edited", 2),
    "delete a row": (["DELETE FROM audit_events WHERE leaf_index = 4"], "deleted", 4),
    "delete and close the gap": (
        [
            "DELETE FROM audit_events WHERE leaf_index = 7",
            "UPDATE audit_events SET leaf_index = leaf_index + 100 WHERE leaf_index > 7",
            "UPDATE audit_events SET leaf_index = leaf_index - 101 WHERE leaf_index > 100",
        ],
        "deleted",
        7,
    ),
    "swap two rows": (
        [
            "UPDATE audit_events SET leaf_index = 1000 WHERE leaf_index = 3",
            "UPDATE audit_events SET leaf_index = 3 WHERE leaf_index = 8",
            "UPDATE audit_events SET leaf_index = 8 WHERE leaf_index = 1000",
        ],
        "reordered",
        3,
    ),
    "insert and shift": (
        [
            "UPDATE audit_events SET leaf_index = leaf_index + 100 WHERE leaf_index >= 5",
            "UPDATE audit_events SET leaf_index = leaf_index - 99 WHERE leaf_index >= 100",
            "INSERT INTO audit_events (occurred_at, action, outcome, initiator, target, observer, org, "
            "detail, event_uuid, leaf_index) SELECT occurred_at, 'account:create', 'success', "
            "'user:mallory', 'user:mallory', observer, '', '{}', 'e0000000-0000-4000-8000-000000000000', 5 "
            "FROM audit_events WHERE leaf_index = 4",
        ],
        "inserted",
        5,
    ),
    "insert beyond the tree": (
        [
            "INSERT INTO audit_events (occurred_at, action, outcome, initiator, target, observer, org, "
            "detail, event_uuid, leaf_index) SELECT occurred_at, action, outcome, initiator, target, "
            "observer, org, detail, 'e0000000-0000-4000-8000-000000000001', 12 "
            "FROM audit_events WHERE leaf_index = 0"
        ],
        "inserted",
        12,
    ),
}


@pytest.mark.parametrize("change", list(TAMPERING), ids=list(TAMPERING))
def test_audit_check_names_the_first_tampered_entry(
    database: Database, audit_keys: KeyBackend, settings: Settings, change: str
) -> None:
    build_log(database, audit_keys, settings, sizes=(6, 6))
    keys = read_pinned_keys(pinned(settings))
    assert check_log(database, pinned_audit_keys=keys).faults == []
    statements, kind, leaf = TAMPERING[change]
    with database.transaction() as s:
        ids = dict(s.execute(select(AuditEvent.leaf_index, AuditEvent.id)).all())
        for sql in statements:
            s.execute(text(sql))
    first = check_log(database, pinned_audit_keys=keys).first
    assert first is not None
    assert (first.kind, first.leaf_index) == (kind, leaf), str(first)
    if kind == "edited":
        assert first.event_id == ids[leaf]
    if kind == "reordered":
        assert first.event_id == ids[8]  # the row now at leaf 3 is the one sequenced as leaf 8
        assert "leaf 8" in first.message


def test_audit_check_flags_a_backdated_unsequenced_row_and_rewritten_hashes(
    database: Database, audit_keys: KeyBackend, settings: Settings
) -> None:
    build_log(database, audit_keys, settings, sizes=(4,))
    keys = read_pinned_keys(pinned(settings))
    with database.transaction() as s:
        s.add(
            AuditEvent(
                action="account:create",
                outcome="success",
                initiator="user:mallory",
                target="user:x",
                occurred_at=utcnow() - timedelta(days=3),
            )
        )
    first = check_log(database, pinned_audit_keys=keys).first
    assert (
        first is not None and first.kind == "inserted" and "dated before the last checkpoint" in first.message
    )
    with database.transaction() as s:
        s.execute(text("DELETE FROM audit_events WHERE leaf_index IS NULL"))
        # rewrite a row AND its stored leaf hash: the tree nodes and the signed root still catch it
        s.execute(text("UPDATE audit_events SET target = 'user:forged' WHERE leaf_index = 1"))
        row = s.scalar(select(AuditEvent).where(AuditEvent.leaf_index == 1))
        assert row is not None
        s.execute(
            text("UPDATE audit_tree_nodes SET hash = :h WHERE level = 0 AND idx = 1"),
            {"h": merkle.hash_leaf(leaf_input(row))},
        )
    faults = check_log(database, pinned_audit_keys=keys).faults
    assert {f.kind for f in faults} >= {"tree", "checkpoint"}
    assert any("leaves 0..3 differ" in f.message for f in faults)


def test_two_sequencers_at_once_assign_each_event_one_gap_free_leaf(
    database: Database, audit_keys: KeyBackend
) -> None:
    add_events(database, 300)
    errors: list[BaseException] = []

    def sequence() -> None:
        try:
            integrate_pending(database, batch_size=25)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sequence) for _ in range(2)]
    for t in threads:
        t.start()
    add_events(database, 50, start=300)  # written while they run
    for t in threads:
        t.join()
    integrate_pending(database)
    assert errors == []
    with database.transaction() as s:
        indexes = sorted(s.scalars(select(AuditEvent.leaf_index)))
        assert indexes == list(range(350))
        assert pending_count(s) == 0
    assert check_log(database).faults == []


def test_an_action_fails_and_changes_nothing_when_its_audit_event_cannot_be_written(
    database: Database,
) -> None:
    def audit_insert_fault(*_args: object) -> None:
        raise RuntimeError("audit table unavailable (injected)")

    event.listen(AuditEvent, "before_insert", audit_insert_fault)
    try:
        with pytest.raises(RuntimeError, match="injected"), database.transaction() as s:
            create_user(
                s, username="eve", password="a-long-test-password-1", role=Role.AUDITOR, initiator="test"
            )
    finally:
        event.remove(AuditEvent, "before_insert", audit_insert_fault)
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.username == "eve")) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_the_worker_hook_sequences_and_signs_and_survives_a_vault_outage(
    database: Database, audit_keys: KeyBackend, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from controlplane.backends.vault import VaultKeys
    from tests.fixtures.vault import closed_port

    calls: list[str] = []
    add_events(database, 3)
    with_sequencer(lambda db: calls.append("requests synced"), audit_keys, pin_path=pinned(settings))(
        database
    )
    assert calls == ["requests synced"]
    with database.transaction() as s:
        assert s.scalar(select(func.max(AuditCheckpoint.tree_size))) == 3
    # Vault down: the events are still integrated, the checkpoint waits for the next pass
    add_events(database, 2, start=3)
    down = VaultKeys(
        addr=f"http://127.0.0.1:{closed_port()}",
        token="unused",
        transit_mount="transit",
        kv_mount="kv",
        timeout=2,
    )
    with_sequencer(None, down)(database)
    assert "audit sequencer" in caplog.text
    with database.transaction() as s:
        assert pending_count(s) == 0
        assert s.scalar(select(func.max(AuditCheckpoint.tree_size))) == 3
    with_sequencer(None, audit_keys)(database)
    with database.transaction() as s:
        assert s.scalar(select(func.max(AuditCheckpoint.tree_size))) == 5
