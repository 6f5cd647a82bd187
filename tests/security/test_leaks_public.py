"""Issue 12 item 10: the public /readyz says ready or not and nothing else, a new SQLite database is
readable by its owner only, and the COSE protected header never reaches a general CBOR decoder."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import cbor2
import pytest
from flask import Flask
from flask.testing import FlaskClient
from packaging.requirements import Requirement
from packaging.version import Version
from sqlalchemy import text

from controlplane.accounts.models import Role
from controlplane.documents import cose
from controlplane.documents.errors import MalformedToken
from controlplane.settings import REPO_ROOT, Settings
from controlplane.storage import Database
from tests.integration.api_actors import bearer, make_user, operator_token, org_token, sign_in_client

PUBLIC = {"REMOTE_ADDR": "203.0.113.80"}


def _leaks(body: str, settings: Settings, database: Database) -> list[str]:
    """What the public must not read in a probe's answer."""
    found = [s for s in (settings.instance_path, database.display_url, settings.vault_addr,
                         "sqlite", "postgresql", "version", "hint", "detail") if s and s in body]
    return found


def test_public_readyz_says_only_ready_or_not(
        client: FlaskClient, settings: Settings, database: Database) -> None:
    response = client.get("/readyz", environ_base=PUBLIC)
    assert response.status_code in (200, 503)
    assert response.get_json() in ({"status": "ready"}, {"status": "not ready"})
    assert _leaks(response.get_data(as_text=True), settings, database) == []
    # an organisation's token is not staff: the same short answer
    health = org_token(database, "health", ["documents:read"])
    assert client.get("/readyz", environ_base=PUBLIC, headers=bearer(health)).get_json().keys() == {"status"}
    assert client.get("/readyz", environ_base=PUBLIC, headers=bearer("cpt_junk")).get_json().keys() == {
        "status"}


def test_readyz_details_for_loopback_operators_and_operator_tokens(
        app: Flask, client: FlaskClient, settings: Settings, database: Database) -> None:
    local = client.get("/readyz", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_json()
    assert {c["name"] for c in local["checks"]} >= {"database"}
    operator = make_user(database, "op-probe", Role.OPERATOR, with_mfa=True)
    signed_in = sign_in_client(app.test_client(), database, operator)
    assert "checks" in signed_in.get("/readyz", environ_base=PUBLIC).get_json()
    token = operator_token(database, operator, ["tenants:read"])
    assert "checks" in client.get("/readyz", environ_base=PUBLIC, headers=bearer(token)).get_json()
    member = make_user(database, "member-probe", Role.ORG_MEMBER, org="health")
    member_client = sign_in_client(app.test_client(), database, member)
    assert member_client.get("/readyz", environ_base=PUBLIC).get_json().keys() == {"status"}


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which gives SQLite's own files mode 0644
    path = tmp_path / "fresh" / "controlplane.db"
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with db.engine.connect() as conn:  # WAL mode keeps the -wal and -shm files while open
            conn.execute(text("SELECT x FROM t")).all()
            files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
            assert path in files and len(files) == 3, files
            assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {
                p.name: "0o600" for p in files}
    finally:
        db.dispose()
        os.umask(old)


# ------------------------------------------------------------------------ COSE protected header
GOOD = cose.protected_header("health", 3)
MALFORMED = {
    "keys in the other order": b"\xa2\x04\x48health#3\x01\x27",
    "indefinite-length map": b"\xbf\x01\x27\x04\x48health#3\xff",
    "long head for the kid length": b"\xa2\x01\x27\x04\x58\x08health#3",
    "alg ES256": b"\xa2\x01\x26\x04\x48health#3",
    "alg as a long int": b"\xa2\x01\x38\x07\x04\x48health#3",
    "kid as text": b"\xa2\x01\x27\x04\x68health#3",
    "a third key": b"\xa3\x01\x27\x04\x48health#3\x05\x40",
    "trailing byte": GOOD + b"\x00",
    "truncated kid": GOOD[:-1],
    "empty": b"",
    "tagged map": b"\xc0" + GOOD,
    "deep nesting": b"\x81" * 100_000 + b"\x00",
    "shared value reference": b"\xd8\x1c" + GOOD,
    "kid without a version": b"\xa2\x01\x27\x04\x46health",
    "version with a leading zero": b"\xa2\x01\x27\x04\x49health#03",
}


@pytest.mark.parametrize("header", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_protected_headers_are_refused(header: bytes) -> None:
    with pytest.raises(MalformedToken):
        cose._parse_protected_afresh(header)
    token = cose.encode_sign1(header, b"payload", b"\x00" * 64)
    if len(token) <= cose.MAX_COSE_BYTES:
        with pytest.raises(MalformedToken):
            cose.decode_sign1(token)


def test_the_protected_header_is_written_and_read_without_cbor2() -> None:
    assert cbor2.loads(GOOD) == {1: -8, 4: b"health#3"}  # the same bytes cbor2 would make
    assert cbor2.dumps({1: -8, 4: b"health#3"}, canonical=True) == GOOD
    assert cose._parse_protected_afresh(GOOD) == ("health", 3)
    assert "cbor2" not in vars(cose)  # no general decoder in the module attackers' bytes reach


def test_cbor2_floor_is_past_the_published_cves() -> None:
    """CVE-2024-26134 (fixed 5.6.2), CVE-2025-68131 (5.8.0), CVE-2026-26209 (5.9.0)."""
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    lines = parser["options"]["install_requires"].split("\n")
    requires = [Requirement(line) for line in lines if line.strip()]
    cbor = next(r for r in requires if r.name == "cbor2")
    assert not cbor.specifier.contains(Version("5.8.9")) and cbor.specifier.contains(Version("5.9.0"))
