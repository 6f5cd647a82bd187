"""Attacks on who may sign with a ministry's key (issue 12, A): an operator issuing for a ministry (API,
CLI, library), one ministry's token signing for another, a revoked or expired token or a disabled
organisation still signing through a cached identity, and a signature whose audit write fails still
being handed out. Real OpenBao, real database; each attack must now fail."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from controlplane.accounts.models import ApiToken, Role, User
from controlplane.accounts.service import Actor
from controlplane.accounts.tokens import revoke_token
from controlplane.backends import Backends
from controlplane.documents.callers import SigningCaller, person_caller
from controlplane.documents.issuance import NewDocument, issue_documents
from controlplane.documents.models import Document, DocumentSignature
from controlplane.documents.signer import OrgSigner
from controlplane.errors import NotAuthenticated, PermissionDenied
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy.models import Tenant
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.documents import org_admin_token
from tests.integration.api_actors import bearer, make_user, operator_token

pytestmark = [pytest.mark.integration]

BASE_URL = "https://verify.example.gov"


def a_document(n: int = 0) -> NewDocument:
    return NewDocument(doc_type="letter", title=f"Letter {n}", recipient="Hana Aziz",
                       sha256=hashlib.sha256(f"attack {n}".encode()).hexdigest())


def caller_of(database: Database, org: str) -> SigningCaller:
    made = org_admin_token(database, org)
    return SigningCaller(org=org, token_id=made.token.id, name=made.token.prefix)


def registry_size(database: Database) -> tuple[int, int]:
    with database.transaction() as s:
        return (int(s.scalar(select(func.count()).select_from(Document)) or 0),
                int(s.scalar(select(func.count()).select_from(DocumentSignature)) or 0))


# ------------------------------------------------------------------------------ operators
def test_an_operator_cannot_issue_a_ministry_document_through_the_api(
    client: FlaskClient, backends: Backends, database: Database, document_org: str,
) -> None:
    operator = make_user(database, "op-signs", Role.OPERATOR, with_mfa=True)
    for scopes in (["tenants:read"], ["tenants:read", "tokens:manage", "keys:rotate"]):
        token = operator_token(database, operator, scopes)
        response = client.post("/api/v1/documents", headers=bearer(token), json={
            "doc_type": "letter", "title": "Forged", "recipient": "Anyone", "sha256": "ab" * 32})
        assert response.status_code == 403, response.get_data(as_text=True)
    # Even an operator token whose row was given documents:issue by hand (direct SQL) signs nothing.
    token = operator_token(database, operator, ["tenants:read"])
    with database.transaction() as s:
        s.execute(update(ApiToken).where(ApiToken.prefix == token.split("_")[1])
                  .values(scopes=["tenants:read", "documents:issue"]))
    response = client.post("/api/v1/documents", headers=bearer(token), json={
        "doc_type": "letter", "title": "Forged", "recipient": "Anyone", "sha256": "ab" * 32})
    assert response.status_code == 403 and "operator cannot sign" in response.get_data(as_text=True)
    assert registry_size(database) == (0, 0)


def test_an_operator_person_or_a_caller_naming_one_signs_nothing(
    database: Database, signer: OrgSigner, document_org: str,
) -> None:
    operator = make_user(database, "op-person", Role.OPERATOR, with_mfa=True)
    with pytest.raises(PermissionDenied):
        person_caller(operator)
    # Built by hand, as a compromised caller might: the database says this person is no admin of it.
    forged = SigningCaller(org=document_org, user_id=operator.user_id, name=operator.username)
    with pytest.raises(PermissionDenied, match="only an admin"):
        issue_documents(database, signer, forged, [a_document()], base_url=BASE_URL)
    with pytest.raises(PermissionDenied):
        signer.sign(forged, [b"a ministry's signature, for an operator"])
    with pytest.raises(PermissionDenied):  # nor is the ministry's Vault identity obtained for it
        signer.identity(forged)
    assert document_org not in signer._identities  # refused before Vault was asked for anything
    assert registry_size(database) == (0, 0)


def test_the_cli_issues_and_imports_only_with_the_ministrys_own_token(
    database: Database, tenancy_settings: Settings, controlplane_token: str, document_org: str,
    make_document_org: Callable[[], str], sample_file: tuple[Path, str], tmp_path: Path,
) -> None:
    path, _ = sample_file
    env = settings_env(tenancy_settings, vault_token=controlplane_token)
    args = ("documents", "issue", "--org", document_org, "--type", "letter", "--title", "Forged",
            "--recipient", "Anyone", "--file", str(path))
    without = run_controlplane(*args, env=env)
    assert without.returncode == 2 and "--token-file" in without.stderr  # the Vault token alone is not enough

    operator = make_user(database, "op-cli", Role.OPERATOR, with_mfa=True)
    op_file = tmp_path / "operator-token"
    op_file.write_text(operator_token(database, operator, ["tenants:read"]), encoding="utf-8")
    as_operator = run_controlplane(*args, "--token-file", str(op_file), env=env)
    assert as_operator.returncode == 1 and "operator cannot sign" in as_operator.stderr

    other = make_document_org()
    other_file = tmp_path / "other-token"
    other_file.write_text(org_admin_token(database, other).secret, encoding="utf-8")
    cross = run_controlplane(*args, "--token-file", str(other_file), env=env)
    assert cross.returncode == 1 and f"a token of {other!r}, not of {document_org!r}" in cross.stderr

    legacy = tmp_path / "legacy.csv"
    legacy.write_text("ref,doc_type,title,recipient,sha256,issued_at\n"
                      f"R-1,letter,Old letter,Someone,{'ab' * 32},2019-01-01\n", encoding="utf-8")
    imported = ("documents", "import", str(legacy), "--org", document_org)
    assert run_controlplane(*imported, env=env).returncode == 2  # no token: usage error
    as_operator = run_controlplane(*imported, "--token-file", str(op_file), env=env)
    assert as_operator.returncode == 1 and "operator cannot sign" in as_operator.stderr
    assert registry_size(database) == (0, 0)


# ------------------------------------------------------------------------ other ministries
def test_a_token_of_one_ministry_cannot_sign_for_another(
    database: Database, signer: OrgSigner, document_org: str, make_document_org: Callable[[], str],
) -> None:
    other = make_document_org()
    mine = caller_of(database, document_org)
    # The organisation is the caller's own: a caller that claims another with this token is refused.
    claimed = SigningCaller(org=other, token_id=mine.token_id, name=mine.name)
    with pytest.raises(PermissionDenied, match=f"not a token of {other!r}"):
        issue_documents(database, signer, claimed, [a_document()], base_url=BASE_URL)
    assert other not in signer._identities
    [doc] = issue_documents(database, signer, mine, [a_document()], base_url=BASE_URL)
    assert doc.key_name == document_org
    with database.transaction() as s:
        assert s.scalars(select(Document.org)).all() == [document_org]


# --------------------------------------------------------------------------- dead credentials
def test_a_revoked_or_expired_token_signs_nothing_though_the_identity_is_cached(
    database: Database, signer: OrgSigner, document_org: str,
) -> None:
    revoked, expired = caller_of(database, document_org), caller_of(database, document_org)
    issue_documents(database, signer, revoked, [a_document(1)], base_url=BASE_URL)
    assert document_org in signer._identities  # the org's Vault identity is cached and alive
    admin = Actor(0, f"{document_org}-admin", Role.ORG_ADMIN, document_org)
    with database.transaction() as s:
        revoke_token(s, admin, revoked.token_id or 0)
        s.execute(update(ApiToken).where(ApiToken.id == expired.token_id)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    for dead, reason in ((revoked, "revoked"), (expired, "expired")):
        with pytest.raises(NotAuthenticated, match=reason):
            issue_documents(database, signer, dead, [a_document(2)], base_url=BASE_URL)
        with pytest.raises(NotAuthenticated, match=reason):
            signer.sign(dead, [b"one more"])
    assert registry_size(database) == (1, 1)


def test_a_disabled_organisation_signs_nothing(
    app: Flask, client: FlaskClient, backends: Backends, database: Database, signer: OrgSigner,
    document_org: str,
) -> None:
    made = org_admin_token(database, document_org)
    caller = SigningCaller(org=document_org, token_id=made.token.id, name=made.token.prefix)
    issue_documents(database, signer, caller, [a_document(1)], base_url=BASE_URL)
    # Decommission's first stage moves the tenant to "disabled" (tenancy.decommission.disable).
    with database.transaction() as s:
        s.execute(update(Tenant).where(Tenant.slug == document_org).values(phase="disabled"))
    with pytest.raises(PermissionDenied, match="disabled"):
        signer.sign(caller, [b"after decommission"])
    response = client.post("/api/v1/documents", headers=bearer(made.secret),
                           json={"doc_type": "letter", "title": "Late", "recipient": "Anyone",
                                 "sha256": "cd" * 32})
    # 403 here; 401 once decommission also revokes the organisation's tokens (part B of issue 12).
    assert response.status_code in (401, 403), response.get_data(as_text=True)
    assert registry_size(database) == (1, 1)


def test_a_disabled_org_admin_signs_nothing(
    database: Database, signer: OrgSigner, document_org: str,
) -> None:
    admin = make_user(database, f"{document_org}-boss", Role.ORG_ADMIN, org=document_org)
    caller = person_caller(admin)
    [doc] = issue_documents(database, signer, caller, [a_document(1)], base_url=BASE_URL)
    with database.transaction() as s:
        row = s.get(DocumentSignature, doc.serial)
        assert row is not None and (row.signed_by, row.person) == (f"user:{admin.username}",) * 2
        s.execute(update(User).where(User.id == admin.user_id).values(disabled=True))
    with pytest.raises(NotAuthenticated, match="disabled"):
        issue_documents(database, signer, caller, [a_document(2)], base_url=BASE_URL)
    assert registry_size(database) == (1, 1)


# ------------------------------------------------------------------------- fail-closed audit
def refuse_signing_events(database: Database) -> None:
    """A real database trigger that makes the signature's audit write fail (not a fake in Python)."""
    with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(
                "CREATE FUNCTION refuse_signing_event() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit write refused (test trigger)'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(
                "CREATE TRIGGER refuse_signing_event BEFORE INSERT ON audit_events FOR EACH ROW "
                "WHEN (NEW.action = 'document:issue') EXECUTE FUNCTION refuse_signing_event()"))
        else:
            conn.execute(text(
                "CREATE TRIGGER refuse_signing_event BEFORE INSERT ON audit_events "
                "WHEN NEW.action = 'document:issue' "
                "BEGIN SELECT RAISE(ABORT, 'audit write refused (test trigger)'); END"))


def test_a_signature_whose_audit_write_fails_is_never_returned(
    client: FlaskClient, backends: Backends, database: Database, signer: OrgSigner, document_org: str,
) -> None:
    caller = caller_of(database, document_org)
    token = org_admin_token(database, document_org).secret
    refuse_signing_events(database)
    with pytest.raises(DBAPIError, match="audit write refused"):
        issue_documents(database, signer, caller, [a_document(n) for n in range(3)], base_url=BASE_URL)
    response = client.post("/api/v1/documents", headers=bearer(token),
                           json={"doc_type": "letter", "title": "Unlogged", "recipient": "Anyone",
                                 "sha256": "ef" * 32})
    assert response.status_code == 500
    assert "token" not in (response.get_json() or {}) and "/V/" not in response.get_data(as_text=True)
    assert registry_size(database) == (0, 0)
