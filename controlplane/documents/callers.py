"""Who may sign for an organisation: a live credential of that organisation, checked at every signature.

A signature with a ministry's key is made only for a `SigningCaller` of that ministry: one of its
own API tokens carrying `documents:issue`, or one of its own enabled admins. `check_caller` reads
the credential again from the database each time (not from a cache, not from the request that
authenticated it), so a revoked or expired token, a disabled person, or an organisation in
decommission signs nothing from that moment on, in every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.accounts.models import ApiToken, Role, User
from controlplane.accounts.service import Actor
from controlplane.accounts.tokens import ApiActor
from controlplane.errors import NotAuthenticated, PermissionDenied
from controlplane.storage import as_utc, utcnow
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.phases import DECOMMISSION_ORDER

ISSUE_SCOPE = "documents:issue"
# A token made by a token names its maker as "token:<prefix>": followed this far to find the person.
_MAX_MAKER_CHAIN = 8


@dataclass(frozen=True)
class SigningCaller:
    """An organisation's credential asking for signatures: a token (by id) or a person (by id)."""

    org: str
    token_id: int | None = None
    user_id: int | None = None
    name: str = ""  # token prefix or username, as the caller authenticated

    @property
    def audit_name(self) -> str:
        return f"token:{self.name}" if self.token_id is not None else f"user:{self.name}"


@dataclass(frozen=True)
class CheckedCaller:
    """A caller found live just now: what the signature log records about it."""

    org: str
    signed_by: str  # "token:<prefix>" or "user:<name>"
    person: str  # the person behind it: "user:<name>" (a token's maker, followed to a person)


def token_caller(actor: ApiActor) -> SigningCaller:
    """The caller of an API request. Operator tokens act for no organisation: refused."""
    if actor.is_operator or not actor.org:
        raise PermissionDenied("an operator cannot sign documents for an organisation",
                               hint="documents are issued with the organisation's own API token")
    if not actor.has_scope(ISSUE_SCOPE):
        raise PermissionDenied(f"this API token lacks the scope {ISSUE_SCOPE!r}")
    return SigningCaller(org=actor.org, token_id=actor.token_id, name=actor.prefix)


def person_caller(actor: Actor) -> SigningCaller:
    """A person signed in (console): only an admin of an organisation signs for it."""
    if actor.role is not Role.ORG_ADMIN or not actor.org:
        raise PermissionDenied("only an organisation's own admins issue its documents")
    return SigningCaller(org=actor.org, user_id=actor.user_id, name=actor.username)


def check_caller(session: Session, caller: SigningCaller, org: str, *,
                 now: datetime | None = None) -> CheckedCaller:
    """The caller as it stands in the database now, or PermissionDenied/NotAuthenticated."""
    now = now or utcnow()
    if caller.org != org:
        raise PermissionDenied(f"a credential of {caller.org!r} cannot sign for {org!r}")
    tenant = session.get(Tenant, org)
    if tenant is None:
        raise PermissionDenied(f"there is no organisation {org!r} to sign for")
    if tenant.phase in {p.value for p in DECOMMISSION_ORDER}:
        raise PermissionDenied(f"organisation {org!r} is {tenant.phase}: it signs nothing any more")
    if caller.token_id is not None:
        token = session.get(ApiToken, caller.token_id)
        if token is None or token.prefix != caller.name or token.org != org or token.user_id is not None:
            raise PermissionDenied(f"this token is not a token of {org!r}")
        if token.revoked_at is not None:
            raise NotAuthenticated("the API token was revoked")
        if token.expires_at is not None and as_utc(token.expires_at) <= now:
            raise NotAuthenticated("the API token has expired")
        if ISSUE_SCOPE not in (token.scopes or []):
            raise PermissionDenied(f"this API token lacks the scope {ISSUE_SCOPE!r}")
        return CheckedCaller(org, f"token:{token.prefix}", _person_behind(session, token.created_by))
    if caller.user_id is not None:
        user = session.get(User, caller.user_id)
        if user is None or user.username != caller.name or user.org != org \
                or user.role != Role.ORG_ADMIN.value:
            raise PermissionDenied(f"only an admin of {org!r} signs its documents")
        if user.disabled:
            raise NotAuthenticated("this account is disabled")
        return CheckedCaller(org, f"user:{user.username}", f"user:{user.username}")
    raise PermissionDenied("a signature needs the organisation's token or person")


def _person_behind(session: Session, maker: str) -> str:
    """The person at the end of a token's `created_by` chain (a token made by a token...)."""
    for _ in range(_MAX_MAKER_CHAIN):
        kind, _, name = maker.partition(":")
        if kind != "token":
            return maker
        parent = session.scalar(select(ApiToken.created_by).where(ApiToken.prefix == name))
        if parent is None:
            return maker
        maker = parent
    return maker
