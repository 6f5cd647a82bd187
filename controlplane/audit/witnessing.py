"""Sending each new checkpoint to the independent witness (C2SP tlog-witness) and keeping its cosignature.

The log proposes `old` = the largest checkpoint the witness co-signed as far as this database
knows, with a consistency proof from there. The witness's own record decides: a 409 names its
size, and the log retries once from that size, which works only if its tree still extends what the
witness signed. A log whose history was cut or rewritten cannot make that proof, so the witness
refuses, and the refusal is logged and shown by `doctor` and `audit check` (uncosigned checkpoints).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from controlplane.audit.checkpoints import AUDIT_KEY, archived_keys, cosignature_time, signed_note
from controlplane.audit.models import AuditCheckpoint
from controlplane.audit.proofs import prove_consistency
from controlplane.errors import ControlPlaneError
from controlplane.storage import Database
from controlplane.tlog.note import Note, NoteError, Verifier, parse_signature_lines, parse_vkey, verified_by
from controlplane.tlog.protocol import WitnessUnreachable, add_checkpoint

if TYPE_CHECKING:
    from controlplane.settings import Settings

log = logging.getLogger(__name__)


class WitnessRefused(ControlPlaneError):
    status = 409
    title = "The witness refused the checkpoint"


@dataclass(frozen=True)
class WitnessLink:
    """Where the witness is and the verifier key(s) it is pinned to."""

    url: str
    verifiers: tuple[Verifier, ...]
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WitnessLink | None:
        """None when no witness is configured (checkpoints then stay uncosigned, and doctor says so)."""
        if not settings.witness_url:
            return None
        return cls(settings.witness_url, pinned_witnesses(settings), settings.witness_timeout)


def pinned_witnesses(settings: Settings) -> tuple[Verifier, ...]:
    """The `witness_vkey` setting: one or more C2SP verifier keys, separated by spaces."""
    try:
        return tuple(parse_vkey(v) for v in settings.witness_vkey.split())
    except NoteError as exc:
        raise WitnessRefused(f"witness_vkey: {exc}") from None


@dataclass(frozen=True)
class _Proposal:
    checkpoint: AuditCheckpoint
    note: str
    old: int
    proof: list[bytes]


def _propose(db: Database, old: int | None = None) -> _Proposal | None:
    with db.transaction() as s:
        cp = s.scalar(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.note.is_not(None))
            .order_by(AuditCheckpoint.tree_size.desc())
            .limit(1)
        )
        if cp is None or cp.cosignature is not None:
            return None
        if old is None:
            old = s.scalar(
                select(AuditCheckpoint.tree_size)
                .where(AuditCheckpoint.cosignature.is_not(None), AuditCheckpoint.tree_size < cp.tree_size)
                .order_by(AuditCheckpoint.tree_size.desc())
                .limit(1)
            ) or 0
        proof = prove_consistency(s, old, cp.tree_size).path if 0 < old < cp.tree_size else []
        public = archived_keys(s, AUDIT_KEY).get(cp.key_version)
        if public is None:
            raise WitnessRefused(f"the audit key version {cp.key_version} is not archived")
        s.expunge(cp)
        return _Proposal(cp, signed_note(cp, public, with_cosignature=False), old, proof)


def _store(db: Database, cp: AuditCheckpoint, lines: str, witnesses: Sequence[Verifier]) -> AuditCheckpoint:
    assert cp.note is not None
    try:
        if not verified_by(Note(cp.note, parse_signature_lines(lines)), witnesses):
            raise WitnessRefused(
                "the witness answered without a cosignature by its pinned key (witness_vkey)"
            )
    except NoteError as exc:
        raise WitnessRefused(f"the witness's answer does not verify: {exc}") from None
    with db.transaction() as s:
        row = s.get(AuditCheckpoint, cp.id)
        assert row is not None
        row.cosignature = lines
        row.witness_signed_at = cosignature_time(lines, witnesses) or datetime.now(UTC)
        s.flush()
        s.expunge(row)
    return row


def cosign_latest(db: Database, link: WitnessLink) -> AuditCheckpoint | None:
    """Have the witness co-sign the latest checkpoint; None when it already has (or there is none).
    Raises WitnessRefused naming the witness's reason, or WitnessUnreachable."""
    proposal = _propose(db)
    for attempt in range(2):
        if proposal is None:
            return None
        cp = proposal.checkpoint
        answer = add_checkpoint(link.url, proposal.old, proposal.proof, proposal.note, timeout=link.timeout)
        if answer.status == 200:
            stored = _store(db, cp, answer.body, link.verifiers)
            log.info("the witness co-signed tree size %d", cp.tree_size)
            return stored
        witnessed = answer.conflict_size
        if answer.status == 409 and witnessed is not None and attempt == 0 and witnessed != proposal.old:
            if witnessed > cp.tree_size:
                raise WitnessRefused(
                    f"the witness co-signed tree size {witnessed}, this log has only {cp.tree_size} "
                    "leaves: the log was truncated"
                )
            proposal = _propose(db, witnessed)  # the witness's size is what we must prove from
            continue
        reason = answer.body.strip()[:300]
        raise WitnessRefused(
            f"the witness refused tree size {cp.tree_size} (HTTP {answer.status}, old size "
            f"{proposal.old}): {reason}"
        )
    return None


def witness_pass(db: Database, link: WitnessLink | None) -> None:
    """One attempt, for the worker: failures are logged (the next pass tries again), not raised."""
    if link is None:
        return
    try:
        cosign_latest(db, link)
    except WitnessRefused as exc:
        log.error("audit witness: %s", exc.message)
    except WitnessUnreachable as exc:
        log.warning("audit witness unreachable: %s", exc)
    except ControlPlaneError as exc:
        log.error("audit witness: %s", exc.message)
