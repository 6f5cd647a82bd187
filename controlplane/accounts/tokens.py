"""Scoped API tokens: `cpt_<prefix>_<secret>`, only a SHA-256 kept, revocable. Organisation tokens
for ministry systems, granted only by that organisation's own admins and always expiring; short-lived
operator tokens bound to the operator who made them in the console. Every token names the person who
minted it (the root person of a chain of tokens)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.accounts.mfa import mfa_enrolled
from controlplane.accounts.models import ApiToken, Role, User
from controlplane.accounts.service import Actor
from controlplane.accounts.token_use import count_use
from controlplane.audit import AuditAction, record_event
from controlplane.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from controlplane.storage import as_utc, utcnow

TOKEN_PREFIX = "cpt"  # noqa: S105 - the public marker of our tokens, not a secret
# The scopes a token may carry; one vocabulary with audit actions and policy rules.
KNOWN_SCOPES = (
    "tenants:read",
    "requests:read",
    "requests:write",
    "documents:issue",
    "documents:read",
    "documents:revoke",
    "mail:send",
    "tokens:manage",
)
# What an operator token may carry: what the console lets an operator do. Never an organisation's.
OPERATOR_SCOPES = (
    "tenants:read",
    "requests:read",
    "requests:approve",
    "tenants:reconcile",
    "tenants:decommission",
    "keys:rotate",  # a tenant's document-signing key: a new version signs from then on
    "tokens:manage",
    "audit:read",  # audit checkpoint and proofs: operator (data-center) tokens only, never an org's
)
# An operator token outlives no console session: the same 12 h as a session's absolute limit.
OPERATOR_TOKEN_MAX_AGE = timedelta(hours=12)
# Organisation-token scopes that make its actor an org admin (it files requests, manages tokens);
# a token with none of them acts as an org member, who reads only.
_ADMIN_SCOPES = frozenset({"requests:write", "tokens:manage"})
ORG_RE = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
_TOKEN_RE = re.compile(r"^cpt_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")
USE_TOUCH_INTERVAL = timedelta(minutes=1)
# An organisation token always expires: at most a year, three months unless its admin chooses.
MAX_ORG_TOKEN_DAYS = 365
DEFAULT_ORG_TOKEN_DAYS = 90
MAX_NAME = 100


@dataclass(frozen=True)
class TokenActor(Actor):
    """An organisation token acting in the use-cases, recorded as ``token:<prefix>``. It carries its
    scopes and expiry so a token it creates can neither outrank nor outlive it."""

    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    minted_by: int | None = None  # the person at the root of the token's chain of makers

    @property
    def audit_name(self) -> str:
        return f"token:{self.username}"

    @property
    def person_id(self) -> int | None:
        return self.minted_by


@dataclass(frozen=True)
class OperatorTokenActor(Actor):
    """An operator acting through an operator token: recorded as the operator (``user:<name>``), so
    nobody approves their own request and two approvals need two people, through any channel."""


@dataclass(frozen=True)
class ApiActor:
    """A caller acting with a token: its organisation (empty for an operator token), the operator it
    is bound to (if any), and what the token allows."""

    token_id: int
    name: str
    org: str
    scopes: frozenset[str]
    prefix: str
    operator: str = ""  # the bound operator's username; empty for an organisation token
    user_id: int | None = None
    expires_at: datetime | None = None
    person_id: int | None = None  # who minted it (root of a chain); the operator for an operator token

    @property
    def is_operator(self) -> bool:
        return self.user_id is not None

    @property
    def audit_name(self) -> str:
        return f"user:{self.operator}" if self.is_operator else f"token:{self.prefix}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def as_actor(self) -> Actor:
        """The actor the use-cases check: the bound operator, or the organisation's admin (a token
        that writes) or member (a token that only reads)."""
        if self.user_id is not None:
            return OperatorTokenActor(self.user_id, self.operator, Role.OPERATOR, "")
        role = Role.ORG_ADMIN if self.scopes & _ADMIN_SCOPES else Role.ORG_MEMBER
        return TokenActor(0, self.prefix, role, self.org, scopes=self.scopes, expires_at=self.expires_at,
                          minted_by=self.person_id)


@dataclass(frozen=True)
class CreatedToken:
    """A new token: the row, and the full secret shown exactly once."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_manager(actor: Actor, org: str) -> None:
    """Who may list and revoke an organisation's tokens: its admins, and operators (to stop one)."""
    if actor.role is Role.OPERATOR:
        return
    if actor.role is Role.ORG_ADMIN:
        if actor.org != org:
            raise PermissionDenied("an organisation admin can manage tokens of its own organisation only")
        return
    raise PermissionDenied("only operators and organisation admins manage API tokens")


def check_may_grant(actor: Actor, org: str) -> None:
    """Only an organisation's own admins (people, or its tokens holding tokens:manage) grant its
    scopes: an operator never mints a ministry's token, so never acts as a ministry."""
    if actor.role is Role.OPERATOR:
        raise PermissionDenied(
            "operators cannot create organisation tokens: only the organisation's own admins grant "
            "its scopes",
            hint="invite the organisation's first admin from the People page; they create its tokens")
    if actor.role is not Role.ORG_ADMIN:
        raise PermissionDenied("only an organisation's admins create its API tokens")
    if actor.org != org:
        raise PermissionDenied("an organisation admin can manage tokens of its own organisation only")
    if isinstance(actor, TokenActor) and "tokens:manage" not in actor.scopes:
        raise PermissionDenied("this API token lacks the scope 'tokens:manage'")


def create_token(
    session: Session, actor: Actor, *, name: str, org: str, scopes: Iterable[str],
    expires_at: datetime | None, known_orgs: Collection[str], now: datetime | None = None,
) -> CreatedToken:
    """An organisation token, made by that organisation's admin. `known_orgs` are the organisations
    that exist and are not being decommissioned; the expiry is required, at most a year away."""
    now = now or utcnow()
    check_may_grant(actor, org)
    name = name.strip()
    wanted = sorted(set(scopes))
    problems = []
    if not name or len(name) > MAX_NAME:
        problems.append(f"give the token a name of 1 to {MAX_NAME} characters")
    if not ORG_RE.fullmatch(org):  # fullmatch: `$` would let a final newline through
        problems.append("the organisation must be a slug (a-z, 0-9, '-')")
    elif org not in known_orgs:
        problems.append(f"organisation {org!r} is not a registered tenant, or is being decommissioned")
    if not wanted:
        problems.append("choose at least one scope")
    unknown = [s for s in wanted if s not in KNOWN_SCOPES]
    if unknown:
        problems.append(f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(KNOWN_SCOPES)}")
    if expires_at is None:
        problems.append(f"an organisation token must expire: choose an expiry within "
                        f"{MAX_ORG_TOKEN_DAYS} days")
    elif as_utc(expires_at) <= now:
        problems.append("the expiry must be in the future")
    elif as_utc(expires_at) > now + timedelta(days=MAX_ORG_TOKEN_DAYS, minutes=1):  # a minute of slack
        problems.append(f"an organisation token expires within {MAX_ORG_TOKEN_DAYS} days")
    if problems:
        raise InvalidInput("; ".join(problems))
    if isinstance(actor, TokenActor):
        _check_within_maker(actor, wanted, expires_at)
    return _issue(session, actor, name=name, org=org, scopes=wanted, expires_at=expires_at, now=now)


def _check_within_maker(maker: TokenActor, scopes: list[str], expires_at: datetime | None) -> None:
    """A token that makes a token grants no scope it lacks and no life beyond its own."""
    extra = [s for s in scopes if s not in maker.scopes]
    if extra:
        raise PermissionDenied(f"a token cannot grant scopes it does not have: {', '.join(extra)}")
    if maker.expires_at is not None and (expires_at is None or as_utc(expires_at) > as_utc(maker.expires_at)):
        raise PermissionDenied("a token cannot make a token that outlives it",
                               hint=f"choose an expiry before {as_utc(maker.expires_at).isoformat()}")


def create_operator_token(
    session: Session, actor: Actor, *, name: str, scopes: Iterable[str], expires_at: datetime,
    now: datetime | None = None,
) -> CreatedToken:
    """A short-lived token that acts as `actor`, an operator signed in to the console (so with MFA).

    Never made through the API (an operator token cannot mint another), never longer than
    OPERATOR_TOKEN_MAX_AGE, and refused at use once the operator is disabled or loses MFA."""
    now = now or utcnow()
    if actor.role is not Role.OPERATOR or isinstance(actor, (OperatorTokenActor, TokenActor)):
        raise PermissionDenied("only an operator signed in to the console can create an operator token")
    user = session.get(User, actor.user_id)
    if user is None or user.disabled or user.role != Role.OPERATOR.value or not mfa_enrolled(user):
        raise PermissionDenied("an operator token needs an enabled operator account with MFA")
    name, wanted = name.strip(), sorted(set(scopes))
    problems = []
    if not name or len(name) > MAX_NAME:
        problems.append(f"give the token a name of 1 to {MAX_NAME} characters")
    if not wanted:
        problems.append("choose at least one scope")
    unknown = [s for s in wanted if s not in OPERATOR_SCOPES]
    if unknown:
        problems.append(f"not operator scope(s): {', '.join(unknown)}; known: {', '.join(OPERATOR_SCOPES)}")
    if not now < as_utc(expires_at) <= now + OPERATOR_TOKEN_MAX_AGE:
        hours = int(OPERATOR_TOKEN_MAX_AGE.total_seconds() // 3600)
        problems.append(f"an operator token expires within {hours} hours from now")
    if problems:
        raise InvalidInput("; ".join(problems))
    return _issue(session, actor, name=name, org="", scopes=wanted, expires_at=expires_at, now=now,
                  user_id=user.id)


def _issue(session: Session, actor: Actor, *, name: str, org: str, scopes: list[str],
           expires_at: datetime | None, now: datetime, user_id: int | None = None) -> CreatedToken:
    prefix = secrets.token_hex(4)
    while session.scalar(select(ApiToken.id).where(ApiToken.prefix == prefix)) is not None:
        prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(name=name, org=org, scopes=scopes, prefix=prefix, secret_hash=_digest(secret),
                     created_by=actor.audit_name, created_at=now, expires_at=expires_at, user_id=user_id,
                     created_by_user_id=actor.person_id)
    session.add(token)
    session.flush()
    record_event(session, action=AuditAction.API_TOKEN_CREATE, initiator=actor.audit_name,
                 target=f"api_token:{token.id}", org=org,
                 detail={"name": name, "prefix": prefix, "scopes": scopes,
                         "operator_token": user_id is not None, "minted_by_user": actor.person_id,
                         "expires_at": expires_at.isoformat() if expires_at else None})
    return CreatedToken(token, secret)


def list_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    """Tokens the actor may manage (operators: all; org admins: their organisation's), newest first.
    A sensitive read: listed by a token (the API), it is audited, as a plain read no longer is."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if actor.role is Role.ORG_ADMIN:
        query = query.where(ApiToken.org == actor.org)
    elif actor.role is not Role.OPERATOR:
        raise PermissionDenied("only operators and organisation admins manage API tokens")
    tokens = list(session.scalars(query))
    if isinstance(actor, (TokenActor, OperatorTokenActor)):
        record_event(session, action=AuditAction.API_TOKEN_LIST, initiator=actor.audit_name,
                     target="api_tokens", org=actor.org, detail={"listed": len(tokens)})
    return tokens


def revoke_token(session: Session, actor: Actor, token_id: int, *, now: datetime | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    # Another organisation's token is "not found": its existence is not theirs to learn.
    if token is None or (actor.role is Role.ORG_ADMIN and token.org != actor.org):
        raise NotFound("no such API token")
    _check_manager(actor, token.org)
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        record_event(session, action=AuditAction.API_TOKEN_REVOKE, initiator=actor.audit_name,
                     target=f"api_token:{token.id}", org=token.org,
                     detail={"name": token.name, "prefix": token.prefix})
    return token


def authenticate_bearer(session: Session, header: str | None, *, now: datetime | None = None) -> ApiActor:
    """The token actor of an `Authorization: Bearer cpt_…` header, or NotAuthenticated with the reason.

    Refusals of a known token are audited before raising: the caller commits the session even on
    NotAuthenticated (see web.bearer). A successful use is not an audit event (plain reads would
    flood the log): it is counted per hour (token_use) and `last_used_at` is touched once a minute;
    what the token then changes is audited by the use-case it calls."""
    now = now or utcnow()
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("send the API token as 'Authorization: Bearer cpt_…'")
    match = _TOKEN_RE.match(value.strip())
    if match is None:
        raise NotAuthenticated("the bearer token is malformed; API tokens look like cpt_<prefix>_<secret>")
    token = session.scalar(select(ApiToken).where(ApiToken.prefix == match.group(1)))
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(value.strip())):
        if token is not None:
            record_event(session, action=AuditAction.API_TOKEN_USE, initiator=f"token:{token.prefix}",
                         target=f"api_token:{token.id}", org=token.org, outcome="failure",
                         detail={"reason": "wrong secret"})
        raise NotAuthenticated("the API token is not valid")
    reason = None
    if token.revoked_at is not None:
        reason = "the API token was revoked"
    elif token.expires_at is not None and as_utc(token.expires_at) <= now:
        reason = "the API token has expired"
    operator = session.get(User, token.user_id) if token.user_id is not None else None
    if not reason and token.user_id is not None and (
        operator is None or operator.disabled or operator.role != Role.OPERATOR.value
        or not mfa_enrolled(operator) or token.expires_at is None
    ):
        reason = "the operator this token acts for can no longer use it"
    minter = session.get(User, token.created_by_user_id) if token.created_by_user_id is not None else None
    if not reason and minter is not None and minter.disabled:
        reason = "the person who made this token is disabled"
    if reason:
        record_event(session, action=AuditAction.API_TOKEN_USE, initiator=f"token:{token.prefix}",
                     target=f"api_token:{token.id}", org=token.org, outcome="failure",
                     detail={"reason": reason})
        raise NotAuthenticated(reason, hint="ask your organisation admin (or, for an operator token, "
                               "the console) for a new token")
    if token.last_used_at is None or now - as_utc(token.last_used_at) >= USE_TOUCH_INTERVAL:
        token.last_used_at = now
    count_use(session, token.id, now)
    return ApiActor(token.id, token.name, token.org, frozenset(token.scopes), token.prefix,
                    operator=operator.username if operator else "", user_id=token.user_id,
                    expires_at=as_utc(token.expires_at) if token.expires_at else None,
                    person_id=token.user_id or token.created_by_user_id)
