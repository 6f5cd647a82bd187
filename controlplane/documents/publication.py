"""Trust-list publication: the control plane signs and stores the list; verifiers serve the stored one."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from controlplane.audit import AuditAction, record_event
from controlplane.backends.keys import KeyBackend
from controlplane.documents.errors import TrustListNotPublished
from controlplane.documents.models import PublishedTrustList
from controlplane.documents.trustlist import build_trust_list, canonical_json, ensure_root_key
from controlplane.errors import ControlPlaneError
from controlplane.storage import Database, as_utc, utcnow

log = logging.getLogger(__name__)

VALIDITY = timedelta(hours=24)
# Publish again well before next_update, so a verifier never holds a list about to go stale.
REFRESH_AFTER = VALIDITY / 2


@dataclass(frozen=True)
class Published:
    """The newest published list: its signed JSON (served byte for byte) and the root public key."""

    id: int
    issued_at: datetime
    next_update: datetime
    body: bytes
    root_public_key: bytes


def content_digest(signed: dict[str, Any]) -> str:
    """What the list says, without when it was said: keys, names and revocations."""
    payload = {k: v for k, v in signed["payload"].items() if k not in ("issued_at", "next_update")}
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def latest_trust_list(database: Database) -> Published | None:
    """One indexed read; no Vault. None until the control plane has published a first list."""
    with database.engine.connect() as conn:
        row = conn.execute(
            select(PublishedTrustList).order_by(PublishedTrustList.id.desc()).limit(1)
        ).first()
    if row is None:
        return None
    return Published(
        id=row.id,
        issued_at=as_utc(row.issued_at),
        next_update=as_utc(row.next_update),
        body=row.body.encode("utf-8"),
        root_public_key=base64.urlsafe_b64decode(row.root_public_key + "=" * (-len(row.root_public_key) % 4)),
    )


def publish_trust_list(
    database: Database, keys: KeyBackend, *, initiator: str, force: bool = False, now: datetime | None = None
) -> Published | None:
    """Build and sign a list (outside any transaction) and store it with an audit event, when it is
    due: nothing published yet, keys or revocations changed, half its validity gone, or `force`.
    Returns the new list, or None when the newest one still says the same and is fresh enough."""
    now = now or utcnow()
    latest = latest_trust_list(database)
    signed = build_trust_list(database, keys, now=now, validity=VALIDITY)
    digest = content_digest(signed)
    if latest is not None and not force:
        with database.engine.connect() as conn:
            latest_digest = conn.scalar(
                select(PublishedTrustList.content_digest).where(PublishedTrustList.id == latest.id)
            )
        if latest_digest == digest and as_utc(now) - latest.issued_at < REFRESH_AFTER:
            return None
    root = ensure_root_key(keys)
    body = json.dumps(signed, ensure_ascii=False, separators=(",", ":"))
    payload = signed["payload"]
    issued_at = as_utc(datetime.fromisoformat(payload["issued_at"].replace("Z", "+00:00")))
    next_update = as_utc(datetime.fromisoformat(payload["next_update"].replace("Z", "+00:00")))
    with database.transaction() as session:
        row = PublishedTrustList(
            issued_at=issued_at,
            next_update=next_update,
            content_digest=digest,
            body=body,
            root_public_key=base64.urlsafe_b64encode(root).decode("ascii").rstrip("="),
        )
        session.add(row)
        session.flush()
        record_event(
            session,
            action=AuditAction.TRUST_LIST_PUBLISH,
            initiator=initiator,
            target=f"trust_list:{row.id}",
            detail={"issuers": len(payload["issuers"]), "revoked": len(payload["revoked"]),
                    "kid": signed["kid"], "next_update": payload["next_update"]},
        )
        published_id = row.id
    return Published(
        id=published_id,
        issued_at=issued_at,
        next_update=next_update,
        body=body.encode("utf-8"),
        root_public_key=root,
    )


def publish_when_due(database: Database, keys: KeyBackend, *, initiator: str = "system:worker") -> None:
    """The worker's hook: publish if due; Vault being down is logged, and the next pass tries again
    (verifiers keep serving the newest list until its next_update)."""
    try:
        published = publish_trust_list(database, keys, initiator=initiator)
    except ControlPlaneError as exc:
        log.warning("trust list not published: %s", exc.message)
        return
    if published is not None:
        log.info("trust list %d published, valid until %s", published.id, published.next_update.isoformat())


def current_trust_list(database: Database, keys: KeyBackend | None, *, initiator: str) -> Published:
    """What /trust-list.json serves: the newest stored list. A process holding the root key
    (`keys`) first publishes when due (keys or revocations changed, or half the validity gone),
    so nothing revoked is ever missing from what it serves; a verifier (`keys` None) only serves,
    and says so while nothing has been published."""
    latest = latest_trust_list(database)
    if keys is not None:
        latest = publish_trust_list(database, keys, initiator=initiator) or latest
    if latest is None:
        raise TrustListNotPublished(
            "no trust list has been published yet", hint="the control plane publishes one on its next pass"
        )
    return latest
