"""What an organisation's keys signed: its registry, page by page, each document with its signature-log
entry and the proof that the audit log holds it (GET /api/v1/documents/issued, `documents monitor`).

The list starts from the registry (every document the public verifier would call valid), not from
the log: a row the platform wrote without signing through the log shows up here as "unlogged",
which is what the ministry's monitor looks for. Proofs are against the latest signed checkpoint;
an event the sequencer has not reached yet is "pending" with the time it was written.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from controlplane.audit import proofs
from controlplane.audit.cadf import leaf_input
from controlplane.audit.models import AuditCheckpoint, AuditEvent
from controlplane.documents.models import Document, DocumentSignature
from controlplane.documents.signature_log import Entry, batch_paths
from controlplane.errors import InvalidInput
from controlplane.storage import as_utc

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
INCLUDED, PENDING, UNLOGGED = "included", "pending", "unlogged"
# The cursor is "<issued_at, microseconds since 1970>-<serial>": every string of this form is a
# place in the (issued_at, serial) order, so no cursor can be "invalid", only past the end.
CURSOR_PATTERN = "^[0-9]{1,17}-[0-9A-Za-z]{1,32}$"
# since/until: a date, or a date and time in UTC (Z or +00:00); 1970 to 9999.
TIME_PATTERN = ("^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
                "(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|\\+00:00)?)?$")
_CURSOR, _TIME = re.compile(CURSOR_PATTERN), re.compile(TIME_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IssuedPage:
    """One page: documents as JSON, the events they refer to, the checkpoint proved against."""

    documents: list[dict[str, Any]]
    events: dict[str, dict[str, Any]]
    checkpoint: AuditCheckpoint | None
    next_cursor: str | None


def encode_cursor(issued_at: datetime, serial: str) -> str:
    return f"{(as_utc(issued_at) - _EPOCH) // timedelta(microseconds=1)}-{serial}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    if not _CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor: give the next_cursor of the previous page as it was")
    micros, serial = cursor.split("-")
    return _EPOCH + timedelta(microseconds=int(micros)), serial


def parse_filter_time(value: str | None, name: str) -> datetime | None:
    """A since/until query value (TIME_PATTERN), or None when absent."""
    if value is None:
        return None
    if not _TIME.fullmatch(value):
        raise InvalidInput(f"{name}: a date (2026-01-31) or UTC time (2026-01-31T08:00:00Z)")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def list_issued(
    session: Session,
    org: str,
    *,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> IssuedPage:
    """One page of `org`'s registry in (issued_at, serial) order, issued_at in [since, until)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: from 1 to {MAX_LIMIT}")
    query = (
        select(Document.serial, Document.issued_at, Document.key_name, Document.key_version,
               Document.token, DocumentSignature)
        .outerjoin(DocumentSignature, DocumentSignature.serial == Document.serial)
        .where(Document.org == org)
        .order_by(Document.issued_at, Document.serial)
        .limit(limit + 1)
    )
    if since is not None:
        query = query.where(Document.issued_at >= since)
    if until is not None:
        query = query.where(Document.issued_at < until)
    if cursor is not None:
        at, serial = decode_cursor(cursor)
        query = query.where(or_(Document.issued_at > at,
                                and_(Document.issued_at == at, Document.serial > serial)))
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    # Only signatures this org made count; a row of another org under this serial proves nothing.
    signed = [r[5] for r in rows if r[5] is not None and r[5].org == org]
    checkpoint = session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    )
    events = _events(session, org, {s.event_id for s in signed}, checkpoint)
    paths = _batch_paths(session, signed)
    documents = []
    for serial, issued_at, key_name, key_version, token, sig in rows:
        body: dict[str, Any] = {
            "serial": serial, "issued_at": as_utc(issued_at).isoformat(),
            "key_id": f"{key_name}#{key_version}", "token": token, "signature": None,
            "log": UNLOGGED,
        }
        if sig is not None and sig.org == org and str(sig.event_id) in events:
            body["signature"] = {
                "signed_sha256": sig.signed_sha256, "key_name": sig.key_name,
                "key_version": sig.key_version, "signed_by": sig.signed_by, "person": sig.person,
                "signed_at": as_utc(sig.signed_at).isoformat(), "event_id": sig.event_id,
                "batch_index": sig.batch_index, "batch_size": sig.batch_size,
                "batch_path": [_b64(h) for h in paths.get(sig.serial, [])],
            }
            body["log"] = events[str(sig.event_id)]["status"]
        documents.append(body)
    next_cursor = encode_cursor(rows[-1][1], rows[-1][0]) if more else None
    return IssuedPage(documents, events, checkpoint, next_cursor)


def _events(
    session: Session, org: str, ids: set[int], checkpoint: AuditCheckpoint | None
) -> dict[str, dict[str, Any]]:
    """Each batch event: its exact leaf input, and its inclusion proof once sequenced and checkpointed."""
    found: dict[str, dict[str, Any]] = {}
    if not ids:
        return found
    for event in session.scalars(select(AuditEvent).where(AuditEvent.id.in_(sorted(ids)))):
        if event.org != org:
            continue
        body: dict[str, Any] = {"leaf_input": _b64(leaf_input(event)), "status": PENDING,
                                "pending_since": as_utc(event.occurred_at).isoformat()}
        if event.leaf_index is not None and checkpoint is not None \
                and event.leaf_index < checkpoint.tree_size:
            proof = proofs.prove_inclusion(session, event.leaf_index, checkpoint.tree_size)
            body = {"leaf_input": body["leaf_input"], "status": INCLUDED,
                    "leaf_index": proof.leaf_index, "tree_size": proof.tree_size,
                    "inclusion_path": [_b64(h) for h in proof.path]}
        found[str(event.id)] = body
    return found


def _batch_paths(session: Session, signed: Sequence[DocumentSignature]) -> dict[str, list[bytes]]:
    """Each listed signature's path in its batch, from the batch's entries as stored (a changed
    entry gives a path that no longer leads to the root its event committed to)."""
    paths: dict[str, list[bytes]] = {}
    wanted = {s.serial for s in signed}
    for event_id in sorted({s.event_id for s in signed}):
        batch = session.execute(
            select(DocumentSignature.serial, DocumentSignature.signed_sha256,
                   DocumentSignature.key_name, DocumentSignature.key_version)
            .where(DocumentSignature.event_id == event_id)
            .order_by(DocumentSignature.batch_index)
        ).all()
        entries = [Entry(*row) for row in batch]
        for entry, path in zip(entries, batch_paths(entries), strict=True):
            if entry.serial in wanted:
                paths[entry.serial] = path
    return paths


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
