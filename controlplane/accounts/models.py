"""Tables owned by accounts: users, console sessions, pending MFA sign-ins, MFA recovery codes, login
throttling, API tokens and their hourly use, organisation invites and staff-account changes awaiting a
second operator."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from controlplane.storage import Base, utcnow


class Role(StrEnum):
    OPERATOR = "operator"
    ORG_ADMIN = "org_admin"
    ORG_MEMBER = "org_member"
    AUDITOR = "auditor"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    # Organisation slug for org_admin/org_member; empty for data-center staff.
    org: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # TOTP secret, encrypted under the MFA key file (see accounts.mfa); set at enrolment start,
    # trusted once confirmed.
    mfa_secret_encrypted: Mapped[str | None] = mapped_column(String(255))
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last accepted TOTP time step: a code (or an older one) is never accepted twice.
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)


class LoginSession(Base):
    """A console session; the cookie holds only its random id, whose hash is stored here."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_id", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the person last proved who they are (password, and TOTP if enrolled) in this session:
    # sign-in, or the re-prompt before a sensitive action (web.console.auth.fresh_auth_required).
    authenticated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Shown on the person's sessions page, to tell their sessions apart.
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class MfaPending(Base):
    """A sign-in whose password was right, waiting for its MFA step. The browser's cookie holds
    only a random id (its hash is the key here): forging or replaying a cookie cannot create one,
    and it is deleted when used, after MAX attempts, or when it expires."""

    __tablename__ = "mfa_pending"
    __table_args__ = (Index("ix_mfa_pending_expires_at", "expires_at"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(16))  # mfa_code | mfa_enrol
    next_url: Mapped[str] = mapped_column(String(256), default="")
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class MfaRecoveryCode(Base):
    """A one-time recovery code for a lost authenticator; only its SHA-256 is kept (80 random bits)."""

    __tablename__ = "mfa_recovery_codes"
    __table_args__ = (Index("ix_mfa_recovery_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """One failed sign-in (wrong password or MFA code): the rows the throttle counts, per
    (name, address) and per address (accounts.lockout).

    The username is kept as typed (it may name nobody): slowing unknown names too means the
    throttle never tells whether an account exists."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_occurred_at", "username", "occurred_at"),
        Index("ix_login_failures_username_client_ip", "username", "client_ip", "occurred_at"),
        Index("ix_login_failures_client_ip_occurred_at", "client_ip", "occurred_at"),
        Index("ix_login_failures_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    # The address as the throttle counts it (accounts.lockout.address_key): IPv4, or an IPv6 /64.
    client_ip: Mapped[str] = mapped_column(String(45))
    stage: Mapped[str] = mapped_column(String(16))  # password | mfa | reauth


class ApiToken(Base):
    """A scoped machine token of one organisation, or an operator's short-lived token (`user_id` set,
    `org` empty); only the SHA-256 of its secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_org", "org"),
        Index("ix_api_tokens_created_by_user_id", "created_by_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    org: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The public part of the token (`cpt_<prefix>_…`): shown in lists and audit events, used to look it up.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The operator an operator token acts as (see accounts.tokens.create_operator_token); else None.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The person who minted it; for a token minted by a token, the person at the root of that chain.
    # Separation of duties compares this person, and disabling them revokes the token.
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)


class ApiTokenUseHour(Base):
    """How often a token was used in an hour: plain reads are counted here, not audited one by one."""

    __tablename__ = "api_token_use_hours"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class OrgInvite(Base):
    """A one-time invite for an organisation's first admin: the invitee sets their own password.
    Only the SHA-256 of the link's secret is kept; used once, within its lifetime."""

    __tablename__ = "org_invites"
    __table_args__ = (Index("ix_org_invites_org", "org"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_user_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class StaffChange(Base):
    """A change to data-center staff (new operator or auditor, a role made operator or auditor, another
    staff member's password or MFA reset) filed by one operator, waiting for a second one."""

    __tablename__ = "staff_changes"
    __table_args__ = (Index("ix_staff_changes_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # create | role | reset
    username: Mapped[str] = mapped_column(String(64))
    # create: {"role", "display_name"}; role: {"role", "org"}; reset: {"reset_mfa"}
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending|approved|rejected|expired
    filed_by_user_id: Mapped[int] = mapped_column(Integer)
    filed_by: Mapped[str] = mapped_column(String(120))
    filed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str] = mapped_column(Text, default="")
