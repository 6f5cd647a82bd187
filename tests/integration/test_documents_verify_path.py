"""The public verification read path: no pre-ping round trip, one retry after a dropped connection,
the JSON shape of a verdict and the security headers on /api/v1/verify/<token>."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from controlplane.backends.keys import KeyBackend
from controlplane.documents.issuance import IssuedDocument, NewDocument, issue_documents
from controlplane.documents.signer import OrgSigner
from controlplane.documents.trustlist import ROOT_KEY_NAME
from controlplane.documents.verification import PublicKeyCache, Verdict, verify_token
from controlplane.storage import Database
from controlplane.tenancy.models import Tenant
from tests.fixtures.documents import prepare_signing_org
from tests.fixtures.vault import VaultJanitor

pytestmark = pytest.mark.integration

BASE_URL = "https://verify.example.gov"
TERMINATE_OTHERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
def org(vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor],
        database: Database) -> str:
    janitor = make_vault_janitor(vault_keys)
    janitor.key(ROOT_KEY_NAME)
    slug = prepare_signing_org(vault_keys, janitor)
    with database.transaction() as session:
        session.add(Tenant(slug=slug, kind="ministry", name_en="Ministry of Health", spec={},
                           spec_digest="0" * 64))
    return slug


def issue_one(database: Database, signer: OrgSigner, org: str) -> IssuedDocument:
    new = NewDocument(doc_type="birth-certificate", title="Birth certificate",
                      recipient="Ahmed Karim Salih", sha256=hashlib.sha256(b"file").hexdigest())
    [doc] = issue_documents(database, signer, org, [new], initiator="user:test", base_url=BASE_URL)
    return doc


def test_the_reader_skips_pre_ping_and_needs_no_transaction(database: Database) -> None:
    reader = database.reader
    assert reader is database.reader  # built once per Database
    assert reader.get_execution_options()["isolation_level"] == "AUTOCOMMIT"
    if database.engine.dialect.name != "sqlite":
        assert reader.pool is not database.engine.pool
        assert not reader.pool._pre_ping and database.engine.pool._pre_ping
    with reader.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_verification_retries_once_after_the_server_dropped_its_connections(
    database: Database, signer: OrgSigner, org: str
) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server whose connections could be terminated")
    cache = PublicKeyCache(database, refresh_interval=3600)
    doc = issue_one(database, signer, org)
    assert verify_token(database, cache, doc.token).verdict is Verdict.VALID  # pools a reader connection
    disconnects: list[bool] = []

    def seen(ctx: ExceptionContext) -> None:
        disconnects.append(ctx.is_disconnect)

    admin = create_engine(database.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    event.listen(database.engine, "handle_error", seen)
    try:
        with admin.connect() as conn:
            assert conn.execute(text(TERMINATE_OTHERS)).scalars().all()  # the pooled one at least
        # Without pre-ping the pooled connection is found dead by the SELECT itself: one failed
        # attempt, then a fresh connection, and the citizen still gets the verdict.
        assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
        assert disconnects == [True]
        assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
        assert disconnects == [True]  # the pool was renewed: no second failure
    finally:
        event.remove(database.engine, "handle_error", seen)
        admin.dispose()


def test_a_second_failure_is_not_hidden(database: Database, signer: OrgSigner, org: str) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server whose connections could be terminated")
    cache = PublicKeyCache(database, refresh_interval=3600)
    doc = issue_one(database, signer, org)
    attempts: list[bool] = []

    def kill_every_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Fault injection: the server drops the connection under each registry read.
        if "FROM documents" in statement:
            attempts.append(True)
            with admin.connect() as other:
                other.execute(text(TERMINATE_OTHERS))

    admin = create_engine(database.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    event.listen(database.engine, "before_cursor_execute", kill_every_statement)
    try:
        with pytest.raises(DBAPIError) as caught:
            verify_token(database, cache, doc.token)
        assert caught.value.connection_invalidated
        assert len(attempts) == 2  # the first try and exactly one retry
    finally:
        event.remove(database.engine, "before_cursor_execute", kill_every_statement)
        admin.dispose()


def test_the_api_verdict_is_flat_json_with_security_headers(
    database: Database, signer: OrgSigner, org: str, client: FlaskClient
) -> None:
    doc = issue_one(database, signer, org)
    response = client.get(f"/api/v1/verify/{doc.token}")
    assert response.status_code == 200
    body = response.get_json()
    assert sorted(body) == sorted(["verdict", "issuer", "issuer_name", "doc_type", "title", "issued_at",
                          "expires_at", "recipient_masked", "reason", "superseded_by", "key_id",
                          "serial", "sha256"])
    assert body["verdict"] == "valid" and body["issued_at"].endswith("Z")
    assert body["issuer_name"] == "Ministry of Health"
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                 "Referrer-Policy", "Permissions-Policy", "Cross-Origin-Opener-Policy"):
        assert len(response.headers.getlist(name)) == 1, name
