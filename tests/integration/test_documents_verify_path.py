"""The public verification read path: driver connections kept for point reads (the libpq shortcut
on PostgreSQL), one retry after a dropped connection, the JSON shape of a verdict and the security
headers on /api/v1/verify/<token>."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from controlplane.backends.keys import KeyBackend
from controlplane.documents.issuance import IssuedDocument, NewDocument, issue_documents
from controlplane.documents.signer import OrgSigner
from controlplane.documents.trustlist import ROOT_KEY_NAME
from controlplane.documents.verification import PublicKeyCache, Verdict, verify_token
from controlplane.storage import Database
from controlplane.storage.lookup import LookupUnavailable, PointLookup
from controlplane.storage.lookup_libpq import LibpqStatement
from controlplane.tenancy.models import Tenant
from tests.fixtures.documents import prepare_signing_org, registry_lookup, signing_caller
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
    [doc] = issue_documents(database, signer, signing_caller(database, org), [new], base_url=BASE_URL)
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


def _terminate_others(admin: Engine) -> int:
    with admin.connect() as conn:
        return len(conn.execute(text(TERMINATE_OTHERS)).scalars().all())


def test_verification_retries_once_after_the_server_dropped_its_connections(
    database: Database, signer: OrgSigner, org: str
) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server whose connections could be terminated")
    cache = PublicKeyCache(database, refresh_interval=3600)
    doc = issue_one(database, signer, org)
    assert verify_token(database, cache, doc.token).verdict is Verdict.VALID  # keeps a connection
    lookup = registry_lookup(database)
    assert lookup.reconnects == 0
    admin = create_engine(database.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        assert _terminate_others(admin) >= 1  # the kept one at least
        # The kept connection is found dead by the read itself: one failed attempt, then a fresh
        # connection, and the citizen still gets the verdict.
        assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
        assert lookup.reconnects == 1
        assert verify_token(database, cache, doc.token).verdict is Verdict.VALID
        assert lookup.reconnects == 1  # the new connection stays: no second failure
    finally:
        admin.dispose()


def test_a_second_failure_is_not_hidden(database: Database, signer: OrgSigner, org: str) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server whose connections could be terminated")
    cache = PublicKeyCache(database, refresh_interval=3600)
    doc = issue_one(database, signer, org)
    verify_token(database, cache, doc.token)
    lookup = registry_lookup(database)
    admin = create_engine(database.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    attempts: list[bool] = []

    def terminate_under_each_read_fault(_connection: object) -> None:
        # Fault injection: the server drops the connection under each registry read.
        attempts.append(True)
        _terminate_others(admin)

    lookup.before_execute.append(terminate_under_each_read_fault)
    try:
        with pytest.raises(LookupUnavailable) as caught:
            verify_token(database, cache, doc.token)
        assert caught.value.status == 503
        assert len(attempts) == 2  # the first try and exactly one retry
        assert lookup.reconnects == 1
    finally:
        lookup.before_execute.clear()
        admin.dispose()
    assert verify_token(database, cache, doc.token).verdict is Verdict.VALID  # and it recovers


def test_the_libpq_shortcut_and_the_cursor_give_the_same_rows(
    database: Database, signer: OrgSigner, org: str
) -> None:
    if database.engine.dialect.name == "sqlite":
        pytest.skip("the libpq shortcut exists only on PostgreSQL")
    docs = [issue_one(database, signer, org) for _ in range(3)]
    cache = PublicKeyCache(database, refresh_interval=3600)
    verify_token(database, cache, docs[0].token)
    lookup = registry_lookup(database)
    plain = PointLookup(database.reader, database.reader.pool, lookup.statement)
    plain._libpq = None  # the cursor path only, as on SQLite
    try:
        for doc in docs:
            serial = {"serial": doc.serial}
            assert lookup.first(serial) == plain.first(serial) is not None
        assert lookup.first({"serial": "0" * 32}) is None and plain.first({"serial": "0" * 32}) is None
        [held] = lookup._idle
        assert held.prepared is True  # the rows above came from PQexecPrepared
    finally:
        plain.close()


def test_a_statement_the_shortcut_cannot_convert_stays_on_the_cursor() -> None:
    assert LibpqStatement.from_pyformat("SELECT a FROM t WHERE k = %(k)s", [str]) is not None
    assert LibpqStatement.from_pyformat("SELECT a FROM t WHERE k = %(k)s OR j = %(k)s", [str]) is None
    assert LibpqStatement.from_pyformat("SELECT a FROM t WHERE k LIKE 'x%%' AND k = %(k)s", [str]) is None
    assert LibpqStatement.from_pyformat("SELECT a FROM t WHERE k = %(k)s", [float]) is None
    numbered = LibpqStatement.from_pyformat("SELECT a, b FROM t WHERE k = %(k)s AND v = %(v)s", [str, int])
    assert numbered is not None and numbered.sql == b"SELECT a, b FROM t WHERE k = $1 AND v = $2"
    assert numbered.names == ("k", "v")


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
