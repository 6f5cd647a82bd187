"""GET /api/v1/verify/<token> in front of Flask answers byte for byte as the Flask view would."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from werkzeug.test import Client, TestResponse

from controlplane.app import close_app, create_app
from controlplane.documents.issuance import NewDocument, issue_documents
from controlplane.documents.revocation import revoke_document, supersede_document
from controlplane.documents.signer import OrgSigner
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.web.public.verify_fastpath import VerifyApiFastPath
from controlplane.web.public.verify_views import VerificationState
from controlplane.web.services import services_of
from tests.fixtures.documents import registry_lookup, signing_caller

pytestmark = pytest.mark.integration

BASE_URL = "https://verify.example.gov"
# Only what the Flask stack adds because it looked at the (absent) session cookie.
FLASK_ONLY_HEADERS = frozenset({"vary"})


@pytest.fixture
def tokens(database: Database, signer: OrgSigner, document_org: str) -> dict[str, str]:
    """A valid, a revoked and a superseded document of one organisation, by name."""
    new = [NewDocument(doc_type="degree", title=f"Degree {n}", recipient="Layla Hassan Ali",
                       sha256=hashlib.sha256(f"file {n}".encode()).hexdigest()) for n in range(4)]
    valid, revoked, old, replacement = issue_documents(
        database, signer, signing_caller(database, document_org), new, base_url=BASE_URL)
    revoke_document(database, document_org, revoked.serial, reason="issued in error", initiator="user:test")
    supersede_document(database, document_org, old.serial, replacement_serial=replacement.serial,
                       reason="name corrected", initiator="user:test")
    return {"valid": valid.token, "revoked": revoked.token, "superseded": old.token}


def fast_path(app: Flask) -> VerifyApiFastPath:
    fast = app.wsgi_app
    assert isinstance(fast, VerifyApiFastPath)
    return fast


def both(app: Flask, path: str, address: str = "192.0.2.1") -> tuple[TestResponse, TestResponse]:
    """The same GET through the fast path and through the Flask app behind it."""
    fast = fast_path(app)
    environ = {"REMOTE_ADDR": address}
    return Client(fast).get(path, environ_base=environ), Client(fast.inner).get(path, environ_base=environ)


def assert_same(fast: TestResponse, flask: TestResponse) -> None:
    assert fast.status == flask.status
    assert fast.data == flask.data  # byte for byte: the same JSON, key order and final newline
    fast_headers = sorted((k.lower(), v) for k, v in fast.headers.items())
    flask_headers = sorted((k.lower(), v) for k, v in flask.headers.items()
                           if k.lower() not in FLASK_ONLY_HEADERS)
    assert fast_headers == flask_headers


def test_every_verdict_is_answered_as_the_flask_view_answers_it(app: Flask, tokens: dict[str, str]) -> None:
    cases = {
        **{name: f"/api/v1/verify/{token}" for name, token in tokens.items()},
        "lowercase": f"/api/v1/verify/{tokens['valid'].lower()}",
        "one character changed": f"/api/v1/verify/{tokens['valid'][:40]}A{tokens['valid'][41:]}",
        "truncated": f"/api/v1/verify/{tokens['valid'][:-9]}",
        "too short": "/api/v1/verify/AB",
        "not base32": "/api/v1/verify/not-a-token!",
        "not ascii": "/api/v1/verify/%C3%A9T%C3%A9",
        "oversized": "/api/v1/verify/" + "A" * 5000,
    }
    verdicts = {}
    for name, path in cases.items():
        fast, flask = both(app, path)
        assert_same(fast, flask)
        assert fast.status_code in (200, 400), (name, fast.status)
        assert fast.headers["Content-Type"] == "application/json"
        assert fast.headers["X-Content-Type-Options"] == "nosniff"
        verdicts[name] = fast.get_json()["verdict"]
    assert verdicts["valid"] == verdicts["lowercase"] == "valid"
    assert verdicts["revoked"] == "revoked" and verdicts["superseded"] == "superseded"
    assert verdicts["not base32"] == verdicts["not ascii"] == verdicts["too short"] == "malformed"
    assert verdicts["one character changed"] != "valid" and verdicts["truncated"] != "valid"


def test_it_counts_and_measures_like_the_view(app: Flask, tokens: dict[str, str], document_org: str) -> None:
    state: VerificationState = services_of(app).verifier
    labels = {"endpoint": "api_documents.verify", "method": "GET", "status_class": "2xx"}
    before = REGISTRY.get_sample_value("controlplane_http_requests_total", labels) or 0.0
    pending_before = state.counter.pending().get
    client = Client(fast_path(app))
    for _ in range(3):
        assert client.get(f"/api/v1/verify/{tokens['valid']}").status_code == 200
    assert REGISTRY.get_sample_value("controlplane_http_requests_total", labels) == before + 3
    [(hour, issuer, verdict)] = [key for key, n in state.counter.pending().items()
                                 if n - (pending_before(key) or 0) == 3]
    assert (issuer, verdict) == (document_org, "valid") and hour.minute == 0


def test_a_registry_failure_is_the_same_503_on_both_paths(app: Flask, tokens: dict[str, str]) -> None:
    path = f"/api/v1/verify/{tokens['valid']}"
    assert Client(fast_path(app)).get(path).status_code == 200  # builds the registry lookup
    database: Database = services_of(app).database
    lookup = registry_lookup(database)
    error = database.engine.dialect.loaded_dbapi.OperationalError

    def registry_down_fault(_connection: object) -> None:
        raise error("injected: the registry's server refuses the read")

    lookup.before_execute.append(registry_down_fault)
    try:
        fast, flask = both(app, path)
    finally:
        lookup.before_execute.clear()
    assert_same(fast, flask)
    assert fast.status_code == 503
    assert fast.get_json()["error"] == "Database unavailable"
    assert "injected" not in fast.get_data(as_text=True)  # the driver's words stay in the log


@pytest.fixture
def limited_app(settings: Settings, database: Database) -> Iterator[Flask]:
    app = create_app(settings.replace(verify_rate_per_minute=6, verify_rate_burst=1))
    app.config.update(TESTING=True)
    yield app
    close_app(app)


def test_the_rate_limit_is_shared_and_answered_alike(limited_app: Flask) -> None:
    fast = fast_path(limited_app)
    here = {"REMOTE_ADDR": "192.0.2.7"}
    assert Client(fast).get("/api/v1/verify/AAAA", environ_base=here).status_code == 200  # the burst
    over_fast = Client(fast).get("/api/v1/verify/AAAA", environ_base=here)
    over_flask = Client(fast.inner).get("/api/v1/verify/AAAA", environ_base=here)  # the same bucket
    assert over_fast.status_code == over_flask.status_code == 429
    assert over_fast.headers["Retry-After"] == over_flask.headers["Retry-After"] == "10"
    assert over_fast.get_json() == over_flask.get_json()
    assert "try again in 10 s" in over_fast.get_json()["message"]
    elsewhere = {"REMOTE_ADDR": "192.0.2.8"}
    assert Client(fast).get("/api/v1/verify/AAAA", environ_base=elsewhere).status_code == 200


def test_everything_else_goes_to_flask(app: Flask, tokens: dict[str, str]) -> None:
    client = Client(fast_path(app))
    token = tokens["valid"]
    head = client.head(f"/api/v1/verify/{token}")
    assert head.status_code == 200 and head.data == b""
    post = client.post(f"/api/v1/verify/{token}")
    assert post.status_code == 405 and "GET" in post.headers["Allow"]
    assert client.get("/api/v1/verify/").status_code == 404
    assert client.get(f"/api/v1/verify/{token}/extra").status_code == 404
    assert client.get(f"/v/{token}?lang=en").status_code == 200  # the page is Flask's


def test_the_verification_role_serves_it_under_its_own_endpoint(
    settings: Settings, database: Database
) -> None:
    app = create_app(settings.replace(role="verification"))
    try:
        fast = fast_path(app)
        assert fast.endpoint == "verify_json"
        assert fast.endpoint in {rule.endpoint for rule in app.url_map.iter_rules()}
        response = Client(fast).get("/api/v1/verify/AB")
        assert response.status_code == 200 and response.get_json()["verdict"] == "malformed"
    finally:
        close_app(app)


@pytest.mark.parametrize("hops", [0, 1])
def test_behind_a_proxy_each_client_has_its_own_bucket(
    settings: Settings, database: Database, hops: int
) -> None:
    """Behind one reverse proxy every request comes from the proxy's address: with proxy_hops=1 the
    limit applies to the address the proxy saw; with 0 a client's own X-Forwarded-For is ignored,
    so sending a new one with each request cannot reset the limit."""
    app = create_app(settings.replace(verify_rate_per_minute=6, verify_rate_burst=1, proxy_hops=hops))
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    try:
        client = Client(app)
        first = client.get("/api/v1/verify/AAAA", environ_base=proxy,
                           headers={"X-Forwarded-For": "198.51.100.1"})
        second = client.get("/api/v1/verify/AAAA", environ_base=proxy,
                            headers={"X-Forwarded-For": "198.51.100.2"})
        page = client.get("/v/AAAA?lang=en", environ_base=proxy, headers={"X-Forwarded-For": "198.51.100.3"})
    finally:
        close_app(app)
    assert first.status_code == 200
    assert (second.status_code, page.status_code) == ((200, 200) if hops else (429, 429))
