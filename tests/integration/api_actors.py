"""Who calls the JSON API and the console in tests: people (an operator enrolled in MFA) and their
signed-in sessions, organisation tokens and operator tokens, made through the same use-cases the
console uses."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask.testing import FlaskClient

from controlplane.accounts import mfa
from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor, create_user, start_session
from controlplane.accounts.tokens import create_operator_token, create_token
from controlplane.storage import Database, utcnow
from controlplane.web.auth import SESSION_KEY

PASSWORD = "a-long-test-password-1"
# Any staff member may create organisation tokens; the use-case needs no row for that.
TOKEN_ADMIN = Actor(1, "op", Role.OPERATOR, "")


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


def org_token(database: Database, org: str, scopes: Iterable[str], *,
              expires_at: datetime | None = None) -> str:
    with database.transaction() as s:
        return create_token(s, TOKEN_ADMIN, name=f"{org} system", org=org, scopes=list(scopes),
                            expires_at=expires_at).secret


def operator_token(database: Database, operator: Actor, scopes: Iterable[str], *, hours: int = 1) -> str:
    with database.transaction() as s:
        return create_operator_token(s, operator, name=f"{operator.username} script", scopes=list(scopes),
                                     expires_at=utcnow() + timedelta(hours=hours)).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
