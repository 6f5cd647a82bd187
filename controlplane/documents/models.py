"""Tables owned by documents: the registry, its signature-log index, anonymous verification counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base

_TS = DateTime(timezone=True)


class Document(Base):
    """One signed document; the token is the COSE object, the row holds its status."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_org_issued_at", "org", "issued_at"),
        # (org, import_ref) makes the legacy import idempotent; NULLs never collide.
        UniqueConstraint("org", "import_ref", name="uq_documents_org_import_ref"),
    )

    serial: Mapped[str] = mapped_column(String(32), primary_key=True)  # hex of 16 random bytes
    org: Mapped[str] = mapped_column(String(64))
    doc_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    recipient: Mapped[str] = mapped_column(String(300))  # stored in full, only ever shown masked
    sha256: Mapped[str] = mapped_column(String(64))  # hex
    issued_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime | None] = mapped_column(_TS)
    key_name: Mapped[str] = mapped_column(String(128))
    key_version: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="valid")  # valid | revoked | superseded
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(_TS)
    superseded_by: Mapped[str | None] = mapped_column(String(32))
    import_ref: Mapped[str | None] = mapped_column(String(128))


class DocumentSignature(Base):
    """One signature made with an organisation's key: who asked for it and where the audit log
    commits to it. The audit event of its batch (`event_id`) holds the Merkle root over its batch's
    entries (documents.signature_log); this row is an index to build proofs, not the evidence: a
    changed row no longer proves against the signed checkpoint."""

    __tablename__ = "document_signatures"
    __table_args__ = (
        Index("ix_document_signatures_event_id", "event_id", "batch_index", unique=True),
        Index("ix_document_signatures_org_signed_at", "org", "signed_at"),
    )

    serial: Mapped[str] = mapped_column(String(32), primary_key=True)
    org: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(BigInteger)  # audit_events.id of the batch's event
    batch_index: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    signed_sha256: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the COSE Sig_structure
    key_name: Mapped[str] = mapped_column(String(128))
    key_version: Mapped[int] = mapped_column(Integer)
    signed_by: Mapped[str] = mapped_column(String(120))  # "token:<prefix>" or "user:<name>"
    person: Mapped[str] = mapped_column(String(120))  # the person behind it ("user:<name>")
    signed_at: Mapped[datetime] = mapped_column(_TS)


class VerificationCount(Base):
    """How many verifications per hour, issuer and verdict: oversight without personal data."""

    __tablename__ = "document_verification_counts"

    hour: Mapped[datetime] = mapped_column(_TS, primary_key=True)  # truncated to the hour, UTC
    issuer: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" when unknown
    verdict: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class PublishedTrustList(Base):
    """A signed trust list as published: the verification service serves the newest one from here,
    so it needs no Vault credential at all (only the control plane holds the root key)."""

    __tablename__ = "published_trust_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    issued_at: Mapped[datetime] = mapped_column(_TS)
    next_update: Mapped[datetime] = mapped_column(_TS)
    # SHA-256 of the payload without its times: publish again only when keys or revocations changed
    content_digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the signed JSON, served byte for byte
    root_public_key: Mapped[str] = mapped_column(String(64))  # base64url, the offline trust anchor
