"""Migration 0011 on a database with history: tokens and requests attributed to people, forever-tokens
given an expiry, and an organisation already in decommission closed (its tokens and people)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from controlplane.accounts.models import Role
from controlplane.accounts.service import create_user
from controlplane.migrations import upgrade_database
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.spec import parse_spec
from tests.fixtures.tenancy import spec_text

pytestmark = pytest.mark.integration

_TOKEN = text("INSERT INTO api_tokens (name, org, scopes, prefix, secret_hash, created_by, created_at, "
              "expires_at, user_id) VALUES (:name, :org, :scopes, :prefix, :hash, :by, :at, :expires, :user)")
_REQUEST = text("INSERT INTO resource_requests (org, kind, environment, payload, state, created_by, "
                "created_at, updated_at, required_approvals, outcome) VALUES ('t-mig-live', "
                "'quota_change', 'prod', '{}', 'submitted', 'token:aaaa0002', :at, :at, 1, '')")


def test_0011_attributes_tokens_to_people_expires_them_and_closes_dead_organisations(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        upgrade_database(db, "0010")
        now = utcnow()
        with db.transaction() as s:
            for slug, phase in (("t-mig-live", "ready"), ("t-mig-gone", "archived")):
                registry.register_spec(s, parse_spec(spec_text(slug, staging=False), source=f"<{slug}>"),
                                       initiator="test")
                registry.get_tenant(s, slug).phase = phase
            op = create_user(s, username="mig-op", password="a-long-test-password-1", role=Role.OPERATOR,
                             initiator="test")
            gone = create_user(s, username="mig-gone", password="a-long-test-password-1",
                               role=Role.ORG_ADMIN, org="t-mig-gone", initiator="test")
            op_id, gone_id = op.id, gone.id
            rows = [  # an operator-minted forever-token, a token minted by it, a dead org's token
                ("legacy", "t-mig-live", "aaaa0001", "user:mig-op", None),
                ("child", "t-mig-live", "aaaa0002", "token:aaaa0001", now + timedelta(days=5)),
                ("dead", "t-mig-gone", "aaaa0003", "user:mig-gone", None),
            ]
            for name, org, prefix, by, expires in rows:
                s.execute(_TOKEN, {"name": name, "org": org, "scopes": json.dumps(["requests:write"]),
                                   "prefix": prefix, "hash": "0" * 64, "by": by, "at": now,
                                   "expires": expires, "user": None})
            s.execute(_REQUEST, {"at": now})
        upgrade_database(db)
        with db.transaction() as s:
            tokens = {r.name: r for r in s.execute(text(
                "SELECT name, created_by_user_id, expires_at, revoked_at FROM api_tokens"))}
            filer = s.execute(text("SELECT created_by_user_id FROM resource_requests")).scalar()
            disabled = s.execute(text("SELECT disabled FROM users WHERE id = :i"), {"i": gone_id}).scalar()
        assert tokens["legacy"].created_by_user_id == op_id
        assert tokens["child"].created_by_user_id == op_id  # the root person of the chain
        assert filer == op_id  # so mig-op can never approve it
        legacy_expiry = tokens["legacy"].expires_at
        assert legacy_expiry is not None
        if isinstance(legacy_expiry, str):  # SQLite through a raw query hands back text
            legacy_expiry = datetime.fromisoformat(legacy_expiry)
        assert timedelta(days=89) < as_utc(legacy_expiry) - now <= timedelta(days=91)
        assert tokens["legacy"].revoked_at is None and tokens["dead"].revoked_at is not None
        assert disabled in (True, 1)
    finally:
        db.dispose()
