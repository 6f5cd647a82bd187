"""Who calls the JSON API and the console in tests: people (an operator enrolled in MFA) and their
signed-in sessions, organisation tokens and operator tokens, made through the same use-cases the
console uses. An organisation token is minted by that organisation's admin (a real person of a
registered tenant), as only an organisation's own admins grant its scopes."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select

from controlplane.accounts import mfa
from controlplane.accounts.models import Role, User
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.accounts.tokens import DEFAULT_ORG_TOKEN_DAYS, create_operator_token, create_token
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.models import Tenant
from controlplane.tenancy.spec import parse_spec
from controlplane.web.console.auth import SESSION_KEY
from tests.fixtures.tenancy import spec_text

PASSWORD = "a-long-test-password-1"


def make_user(database: Database, username: str, role: Role, org: str = "", *,
              with_mfa: bool = False) -> Actor:
    """A real user row; `with_mfa` enrols a TOTP authenticator as the console's enrolment does."""
    with database.transaction() as s:
        user = create_user(s, username=username, password=PASSWORD, role=role, org=org, initiator="test")
        if with_mfa:
            mfa.begin_enrolment(s, user.id, mfa.SecretBox(secrets.token_bytes(mfa.KEY_BYTES)))
            mfa.confirm_enrolment(user)
        return Actor(user.id, username, role, org)


def sign_in_client(client: FlaskClient, database: Database, actor: Actor) -> FlaskClient:
    """`client` carrying the session a completed console login leaves for `actor`."""
    with database.transaction() as s:
        session_id = start_session(s, actor)
    with client.session_transaction() as session:
        session[SESSION_KEY] = session_id
    return client


def ensure_org(database: Database, org: str) -> None:
    """`org` registered as a tenant (prod only, never applied), unless it already is."""
    with database.transaction() as s:
        if s.get(Tenant, org) is None:
            registry.register_spec(s, parse_spec(spec_text(org, staging=False), source=f"<test {org}>"),
                                   initiator="test")


def org_admin(database: Database, org: str) -> Actor:
    """The organisation's admin `<org>-admin` (made once), its tenant registered."""
    ensure_org(database, org)
    username = f"{org}-admin"[:64]
    with database.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is not None:
            return Actor(user.id, username, Role.ORG_ADMIN, org)
    return make_user(database, username, Role.ORG_ADMIN, org)


def org_token(database: Database, org: str, scopes: Iterable[str], *,
              expires_at: datetime | None = None, minted_by: Actor | None = None) -> str:
    """A token of `org` minted by its admin (or `minted_by`), expiring in 90 days unless told."""
    return org_token_row(database, org, scopes, expires_at=expires_at, minted_by=minted_by)[1]


def org_token_row(database: Database, org: str, scopes: Iterable[str], *, name: str = "",
                  expires_at: datetime | None = None, minted_by: Actor | None = None) -> tuple[int, str]:
    """(id, secret) of a new token of `org`, as org_token."""
    maker = minted_by or org_admin(database, org)
    with database.transaction() as s:
        created = create_token(s, maker, name=name or f"{org} system", org=org, scopes=list(scopes),
                               expires_at=expires_at or utcnow() + timedelta(days=DEFAULT_ORG_TOKEN_DAYS),
                               known_orgs=registry.live_org_slugs(s))
        return created.token.id, created.secret


def operator_token(database: Database, operator: Actor, scopes: Iterable[str], *, hours: int = 1) -> str:
    with database.transaction() as s:
        return create_operator_token(s, operator, name=f"{operator.username} script", scopes=list(scopes),
                                     expires_at=utcnow() + timedelta(hours=hours)).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
