"""Issue 12 item 1: the public verifier's database credential cannot forge. With it, inserting a
document, a signing key or an API token fails (PostgreSQL: permission denied for its own role;
SQLite: the read-only connection refuses every write), while verification still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from controlplane.app import close_app, create_app
from controlplane.documents.models import VerificationCount
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tenancy.services import service_dir
from controlplane.tenancy.verifier_db import (
    PASSWORD_FILE,
    VerifierDatabase,
    drop_verifier,
    grant_verifier,
    verifier_database,
    verifier_role_name,
)

FORGERIES = {
    "documents": (
        "INSERT INTO documents (serial, org, doc_type, title, recipient, sha256, issued_at, key_name,"
        " key_version, token, status, status_reason) VALUES ('f0', 'health', 'letter', 'Forged',"
        " 'x', 'aa', '2026-01-01', 'health', 1, 'tok', 'valid', '')"
    ),
    "signing_public_keys": (
        "INSERT INTO signing_public_keys (tenant_slug, key_name, version, algorithm, public_key,"
        " archived_at) VALUES ('health', 'health', 99, 'ed25519', 'AAAA', '2026-01-01')"
    ),
    "api_tokens": (
        "INSERT INTO api_tokens (name, org, scopes, prefix, secret_hash, created_by, created_at)"
        " VALUES ('forged', '', '[]', 'forged01', 'aa', 'attacker', '2026-01-01')"
    ),
}


@pytest.fixture
def verifier(settings: Settings, database: Database) -> Iterator[VerifierDatabase]:
    grant_verifier(database, settings)
    yield verifier_database(settings, service_dir(settings, "shared-verification", "verification-service"))
    drop_verifier(database, settings)


def _engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _refused(engine: Engine, sql: str) -> str:
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(sql))
    return str(caught.value.orig)


def test_verifier_credential_cannot_insert_a_document_a_key_or_a_token(
    verifier: VerifierDatabase, database: Database
) -> None:
    engine = _engine(verifier.url)
    try:
        postgres = engine.dialect.name == "postgresql"
        expected = "permission denied" if postgres else "readonly database"
        for table, sql in FORGERIES.items():
            assert expected in _refused(engine, sql), table
        assert expected in _refused(engine, "UPDATE documents SET status = 'valid'")
        assert expected in _refused(engine, "DELETE FROM published_trust_lists")
        # what it is for: reading the registry
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM documents")) == 0
            assert conn.execute(text("SELECT slug, name_en FROM tenants")).all() == []
        if postgres:
            # nothing else is readable: people, sessions, tokens, the audit log
            for table in ("users", "login_sessions", "api_tokens", "audit_events"):
                assert "permission denied" in _refused(engine, f"SELECT * FROM {table}"), table
            assert "permission denied" in _refused(engine, "SELECT spec FROM tenants")
            with engine.begin() as conn:  # the one table it writes
                conn.execute(text("INSERT INTO document_verification_counts (hour, issuer, verdict, count)"
                                  " VALUES ('2026-01-01', 'health', 'valid', 1)"))
                conn.execute(text("UPDATE document_verification_counts SET count = count + 1"))
            assert "permission denied" in _refused(engine, "DELETE FROM document_verification_counts")
    finally:
        engine.dispose()
    with database.transaction() as s:  # and nothing it tried reached the control plane's data
        assert s.scalar(text("SELECT count(*) FROM api_tokens")) == 0


def test_verifier_role_is_its_own_and_its_password_stays_with_the_worker(
    settings: Settings, database: Database, verifier: VerifierDatabase
) -> None:
    assert verifier.url != settings.effective_database_url
    password_file = Path(settings.instance_path) / PASSWORD_FILE
    if database.engine.dialect.name == "postgresql":
        assert f"{verifier_role_name(settings)}:" in verifier.url
        assert password_file.stat().st_mode & 0o077 == 0
        assert verifier.counts_url == ""
        with database.engine.connect() as conn:
            flags = conn.execute(text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = :r"
            ), {"r": verifier_role_name(settings)}).one()
        assert tuple(flags) == (False, False, False, True)
    else:
        assert "mode=ro" in verifier.url and verifier.counts_url.startswith("sqlite:///")
        # its counts file lives in its own directory, outside the control plane's instance folder
        counts = Path(verifier.counts_url.removeprefix("sqlite:///"))
        assert not counts.is_relative_to(Path(settings.instance_path).resolve())


def test_verification_role_serves_and_counts_with_its_own_credential(
    settings: Settings, database: Database, verifier: VerifierDatabase, tmp_path: Path
) -> None:
    service_home = tmp_path / "verification-service"
    service_home.mkdir()
    app = create_app(settings.replace(
        role="verification", instance_path=str(service_home / "instance"), database_url=verifier.url,
        verification_counts_database_url=verifier.counts_url,
    ))
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        malformed = client.get("/api/v1/verify/NOT-A-TOKEN-1")
        assert malformed.get_json()["verdict"] == "malformed"
        # a session cookie reaches no session table: the public role never reads sign-ins
        client.set_cookie("cp_session", "forged")
        assert client.get("/api/v1/verify/NOT-A-TOKEN-2").status_code < 500
    finally:
        close_app(app)  # writes the counts
    counts = Database(verifier.counts_url or settings.effective_database_url)
    try:
        with counts.transaction() as s:
            assert sum(s.scalars(select(VerificationCount.count))) >= 1
    finally:
        counts.dispose()
