"""Issue 12 items 5 and 9: SECRET_KEY plus a database copy no longer skips the password or the
authenticator, and a TOTP or recovery code signs in once even when posted twice in parallel."""

from __future__ import annotations

import base64
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

from controlplane.accounts import mfa
from controlplane.accounts.models import User
from controlplane.app import close_app, create_app
from controlplane.audit.models import AuditEvent
from controlplane.migrations import upgrade_database
from controlplane.settings import Settings, load_settings
from controlplane.storage import Database
from controlplane.web.console.auth import secret_box_for
from tests.fixtures.app import TEST_DB_ENV, csrf_token_from
from tests.security.session_support import (
    PASSWORD,
    code_at,
    live_sessions,
    make_person,
    post_code,
    post_login,
    sign_in,
    stored_secret,
)


def _forge(app: Flask, client: FlaskClient, payload: dict[str, object]) -> None:
    """What an attacker holding SECRET_KEY does: sign any cookie content they like."""
    cookie = app.session_interface.get_signing_serializer(app).dumps(payload)  # type: ignore[attr-defined]
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)


def _legacy_key_material(secret_key: str) -> bytes:
    """The key earlier releases derived from SECRET_KEY for TOTP secrets (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"controlplane:mfa-secret:v1").derive(secret_key.encode())


def test_a_forged_mfa_pending_cookie_signs_nobody_in(app: Flask, database: Database) -> None:
    # An operator who has not enrolled yet: the old forged {"uid", "stage": "mfa_enrol"} cookie let
    # the attacker enrol their own authenticator for them and be signed in.
    victim, _ = make_person(app, database, "op-forged", with_mfa=False)
    enrolled, secret = make_person(app, database, "op-forged-2")
    assert secret is not None
    for payload in (
        {"mfa_pending": {"uid": victim.user_id, "stage": "mfa_enrol", "next": "/", "exp": 2**40}},
        {"mfa_pending": {"uid": enrolled.user_id, "stage": "mfa_code", "next": "/", "exp": 2**40}},
        {"mfa_pending": secrets.token_urlsafe(32)},  # a well-formed id that no pending row has
        {"mfa_pending": "x" * 64},
    ):
        client = app.test_client()
        _forge(app, client, payload)
        enrol = client.get("/login/mfa/enrol")
        assert enrol.status_code == 302 and enrol.headers["Location"].endswith("/login")
        page = client.get("/login").get_data(as_text=True)
        posted = client.post("/login/mfa/enrol", data={"csrf_token": csrf_token_from(page), "code": "123456"})
        assert posted.status_code == 302 and posted.headers["Location"].endswith("/login")
        coded = client.post("/login/mfa", data={"csrf_token": csrf_token_from(page),
                                                "code": code_at(secret)})
        assert coded.status_code == 302 and coded.headers["Location"].endswith("/login")
        assert client.get("/status").headers["Location"].startswith("/login")
    assert live_sessions(database) == 0
    with database.transaction() as s:  # nobody enrolled an authenticator for the victim
        assert s.scalar(select(User.mfa_secret_encrypted).where(User.id == victim.user_id)) is None


def test_a_replayed_mfa_pending_cookie_signs_nobody_in(app: Flask, database: Database) -> None:
    actor, secret = make_person(app, database, "op-replay")
    assert secret is not None
    client = app.test_client()
    assert post_login(client, "op-replay").headers["Location"].endswith("/login/mfa")
    csrf = csrf_token_from(client.get("/login/mfa").get_data(as_text=True))
    captured = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert captured is not None
    assert post_code(client, code_at(secret), csrf=csrf).status_code == 302
    assert live_sessions(database, actor.user_id) == 1
    # the pending cookie, copied before it was used, is replayed with the next valid code
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], captured.value)
    answer = replay.post("/login/mfa", data={"csrf_token": csrf, "code": code_at(secret, 1)})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    assert live_sessions(database, actor.user_id) == 1


def test_secret_key_and_a_database_copy_do_not_give_the_totp_secret(
        app: Flask, database: Database, settings: Settings) -> None:
    actor, secret = make_person(app, database, "op-sealed")
    assert secret is not None
    sealed = stored_secret(database, actor.user_id)
    assert sealed.startswith(mfa.SEALED_PREFIX) and secret not in sealed
    key_file = settings.effective_mfa_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Every key an attacker can derive from SECRET_KEY fails on the stored value.
    derived = _legacy_key_material(app.config["SECRET_KEY"])
    with pytest.raises(InvalidToken):
        Fernet(base64.urlsafe_b64encode(derived)).decrypt(sealed.encode())
    raw = base64.urlsafe_b64decode(sealed[len(mfa.SEALED_PREFIX):])
    for aad in (f"controlplane:mfa-secret:user:{actor.user_id}".encode(), None):
        with pytest.raises(InvalidTag):
            AESGCM(derived).decrypt(raw[:12], raw[12:], aad)
    with pytest.raises(mfa.MfaSecretUnreadable):
        mfa.SecretBox(derived).open(sealed, user_id=actor.user_id)

    # The same SECRET_KEY and database without the MFA key file: the right code still signs no one in.
    other_instance = Path(settings.instance_path).parent / "attacker"
    other_instance.mkdir()
    (other_instance / "secret_key").write_text(app.config["SECRET_KEY"], encoding="utf-8")
    attacker_app = create_app(settings.replace(instance_path=str(other_instance)))
    attacker_app.config.update(TESTING=True)
    try:
        client = attacker_app.test_client()
        assert post_login(client, "op-sealed").headers["Location"].endswith("/login/mfa")
        refused = post_code(client, code_at(secret))
        assert refused.status_code == 500 and "cannot be decrypted" in refused.get_data(as_text=True)
        assert live_sessions(database, actor.user_id) == 0
    finally:
        close_app(attacker_app)


def test_a_legacy_secret_is_resealed_under_the_key_file_on_first_use(app: Flask, database: Database) -> None:
    actor, _ = make_person(app, database, "op-legacy", with_mfa=False)
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    legacy = Fernet(base64.urlsafe_b64encode(_legacy_key_material(app.config["SECRET_KEY"])))
    with database.transaction() as s:  # as an earlier release stored it
        s.execute(update(User).where(User.id == actor.user_id).values(
            mfa_secret_encrypted=legacy.encrypt(secret.encode()).decode(),
            mfa_enrolled_at=User.created_at))
    client = app.test_client()
    sign_in(client, "op-legacy", secret)
    sealed = stored_secret(database, actor.user_id)
    assert sealed.startswith(mfa.SEALED_PREFIX)
    with pytest.raises(InvalidToken):
        legacy.decrypt(sealed.encode())
    with app.app_context(), database.transaction() as s:
        assert mfa.read_secret(s, actor.user_id, secret_box_for(app)) == secret


# ------------------------------------------------------------------ parallel one-time codes
@pytest.fixture(params=["sqlite", "postgresql"])
def backend_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, Database]]:
    """An app on SQLite, then on PostgreSQL (a brand-new database on the test server)."""
    server = os.environ.get(TEST_DB_ENV)
    admin = None
    name = f"cptest_{secrets.token_hex(6)}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'parallel.db'}"
    else:
        if not server:
            pytest.skip(f"{TEST_DB_ENV} is not set: no PostgreSQL server to race on")
        base = make_url(server.replace("postgresql://", "postgresql+psycopg://", 1))
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    instance = tmp_path / "instance"
    instance.mkdir()
    settings = load_settings({"instance_path": str(instance), "database_url": url}, environ={})
    database = Database(url)
    upgrade_database(database)
    flask_app = create_app(settings)
    flask_app.config.update(TESTING=True)
    try:
        yield flask_app, database
    finally:
        close_app(flask_app)
        database.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :n"), {"n": name})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            admin.dispose()


def _race(clients: list[FlaskClient], code: str) -> list[int]:
    """Post one code from each client at the same moment (two threads, two DB connections)."""
    csrfs = [csrf_token_from(c.get("/login/mfa").get_data(as_text=True)) for c in clients]
    barrier = threading.Barrier(len(clients))
    answers: list[TestResponse | BaseException] = [RuntimeError("not run")] * len(clients)

    def post(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = post_code(clients[i], code, csrf=csrfs[i])
        except BaseException as exc:  # reported by the assertion below
            answers[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = []
    for answer in answers:
        assert isinstance(answer, TestResponse), answer
        statuses.append(answer.status_code)
    return sorted(statuses)


def test_two_parallel_posts_of_one_totp_code_give_exactly_one_session(
        backend_app: tuple[Flask, Database]) -> None:
    app, database = backend_app
    for round_ in range(3):  # three races, three people: a lucky ordering cannot pass them all
        actor, secret = make_person(app, database, f"op-race-{round_}")
        assert secret is not None
        clients = [app.test_client(), app.test_client()]
        for client in clients:  # two pending sign-ins of the same person (password known)
            assert post_login(client, actor.username, PASSWORD).headers["Location"].endswith("/login/mfa")
        assert _race(clients, code_at(secret)) == [302, 401]
        assert live_sessions(database, actor.user_id) == 1


def test_two_parallel_posts_of_one_recovery_code_give_exactly_one_session(
        backend_app: tuple[Flask, Database]) -> None:
    app, database = backend_app
    actor, _ = make_person(app, database, "op-race-recovery")
    with database.transaction() as s:
        code = mfa.replace_recovery_codes(s, actor.user_id)[0]
    clients = [app.test_client(), app.test_client()]
    for client in clients:
        assert post_login(client, actor.username).headers["Location"].endswith("/login/mfa")
    assert _race(clients, code) == [302, 401]
    assert live_sessions(database, actor.user_id) == 1
    with database.transaction() as s:
        assert mfa.unused_recovery_codes(s, actor.user_id) == 9


def test_legacy_secrets_are_resealed_at_start_without_waiting_for_a_sign_in(
        app: Flask, database: Database, settings: Settings) -> None:
    legacy = Fernet(base64.urlsafe_b64encode(_legacy_key_material(app.config["SECRET_KEY"])))
    ids = []
    for name in ("aud-asleep", "op-asleep"):
        actor, _ = make_person(app, database, name, with_mfa=False)
        ids.append(actor.user_id)
        with database.transaction() as s:
            s.execute(update(User).where(User.id == actor.user_id).values(
                mfa_secret_encrypted=legacy.encrypt(b"JBSWY3DPEHPK3PXP").decode()))
    with database.transaction() as s:  # what `controlplane serve` does before its workers start
        box = mfa.SecretBox.from_key_file(settings.effective_mfa_key_file,
                                          legacy_secret_key=app.config["SECRET_KEY"])
        assert mfa.reseal_legacy_secrets(s, box) == 2
    with database.transaction() as s:
        assert mfa.reseal_legacy_secrets(s, box) == 0
        for user_id in ids:
            sealed = stored_secret(database, user_id)
            assert sealed.startswith(mfa.SEALED_PREFIX)
            assert mfa.SecretBox(box_key(settings)).open(sealed, user_id=user_id) == "JBSWY3DPEHPK3PXP"
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "account:mfa:reseal")).all()
        assert sorted(e.target for e in events) == sorted(f"user:{i}" for i in ids)


def box_key(settings: Settings) -> bytes:
    """The MFA key alone (no legacy SECRET_KEY path): what opens a re-sealed secret."""
    return mfa.load_or_create_key(settings.effective_mfa_key_file)
