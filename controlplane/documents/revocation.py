"""Revocation and replacement of an organisation's own documents, with a reason and an audit event."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.audit import AuditAction, record_event
from controlplane.documents.models import Document
from controlplane.errors import Conflict, InvalidInput, NotFound
from controlplane.storage import Database, utcnow

SERIAL = re.compile(r"[0-9a-f]{32}")
MAX_REASON = 500


def revoke_document(
    database: Database, org: str, serial: str, *, reason: str, initiator: str
) -> Document:
    """Mark the document revoked (a valid or superseded one); it shows in the next trust list."""
    reason = _checked_reason(reason)
    with database.transaction() as session:
        document = _own_document(session, org, serial)
        if document.status == "revoked":
            raise Conflict(f"document {document.serial} is already revoked")
        previous = document.status
        document.status = "revoked"
        document.status_reason = reason
        document.status_changed_at = utcnow()
        record_event(
            session, action=AuditAction.DOCUMENT_REVOKE, initiator=initiator,
            target=f"document:{document.serial}", org=org,
            detail={"reason": reason, "previous_status": previous},
        )
    return document


def supersede_document(
    database: Database, org: str, serial: str, *, replacement_serial: str, reason: str, initiator: str
) -> Document:
    """Mark a valid document superseded by another valid document of the same organisation."""
    reason = _checked_reason(reason)
    with database.transaction() as session:
        document = _own_document(session, org, serial)
        replacement = _own_document(session, org, replacement_serial, what="replacement document")
        if replacement.serial == document.serial:
            raise InvalidInput("a document cannot supersede itself")
        if document.status != "valid":
            raise Conflict(f"document {document.serial} is {document.status}, not valid")
        if replacement.status != "valid":
            raise Conflict(f"replacement document {replacement.serial} is {replacement.status}, not valid")
        document.status = "superseded"
        document.status_reason = reason
        document.status_changed_at = utcnow()
        document.superseded_by = replacement.serial
        record_event(
            session, action=AuditAction.DOCUMENT_SUPERSEDE, initiator=initiator,
            target=f"document:{document.serial}", org=org,
            detail={"reason": reason, "superseded_by": replacement.serial},
        )
    return document


def _own_document(session: Session, org: str, serial: str, *, what: str = "document") -> Document:
    serial = serial.strip().lower() if isinstance(serial, str) else ""
    if not SERIAL.fullmatch(serial):
        raise InvalidInput(f"{what} serial must be 32 hexadecimal digits")
    # Another organisation's serial gets the same answer as a missing one: no existence oracle.
    document = session.execute(
        select(Document).where(Document.serial == serial, Document.org == org).with_for_update()
    ).scalar_one_or_none()
    if document is None:
        raise NotFound(f"no {what} {serial} of {org}")
    return document


def _checked_reason(reason: str) -> str:
    reason = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput("reason: required (it is shown on the verification page)")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters")
    return reason
