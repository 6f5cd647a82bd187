"""The documents JSON API with real org tokens, a real OpenBao (per-org AppRole signing) and a real
database: issue one and a batch, org isolation, bad input, the public verify JSON, the rate limit,
and verification counts aggregated in memory and flushed without personal data."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select

from controlplane.app import close_app, create_app
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.documents.models import Document, VerificationCount
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.web.public.verify_views import VerificationState
from controlplane.web.services import services_of
from tests.fixtures.app import csrf_token_from

pytestmark = [pytest.mark.integration]

RECIPIENT = "Ahmed Karim Salih"


def doc_body(n: int = 0, **changes: Any) -> dict[str, Any]:
    body = {
        "doc_type": "birth-certificate",
        "title": f"Birth certificate {n}",
        "recipient": RECIPIENT,
        "sha256": hashlib.sha256(f"file {n}".encode()).hexdigest(),
    }
    body.update(changes)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def document_count(database: Database) -> int:
    with database.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Document)) or 0)


def shared_state(app: Flask) -> VerificationState:
    state: VerificationState = services_of(app).verifier
    return state


@pytest.fixture
def org_token(document_org: str, api_token_for: Callable[..., str]) -> str:
    return api_token_for(document_org)


def issue(client: FlaskClient, token: str, body: object, query: str = "") -> Any:
    response = client.post(f"/api/v1/documents{query}", json=body, headers=bearer(token))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_issue_one_then_a_batch(client: FlaskClient, backends: Backends, database: Database,
                                document_org: str, org_token: str) -> None:
    one = issue(client, org_token, doc_body(expires_at="2099-01-01"))
    assert len(one["serial"]) == 32 and one["status"] == "valid"
    assert one["url"].startswith("HTTP://127.0.0.1:8080/V/") and one["url"].endswith(one["token"])
    assert one["recipient_masked"] == "A**** K**** S****" and "recipient" not in one
    assert one["qr_svg"].startswith("<svg") and one["expires_at"] == "2099-01-01T00:00:00+00:00"
    assert one["key_id"] == f"{document_org}#1"

    png = client.get(one["qr_png_url"], headers=bearer(org_token))
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.get(one["qr_svg_url"], headers=bearer(org_token))
    assert svg.mimetype == "image/svg+xml" and svg.get_data(as_text=True).startswith("<svg")

    batch = issue(client, org_token, {"documents": [doc_body(n) for n in range(1, 26)]})["documents"]
    assert len(batch) == 25 and len({d["serial"] for d in batch}) == 25
    assert all("qr_svg" not in d and d["qr_png_url"].endswith("/qr.png") for d in batch)
    with_svg = issue(client, org_token, {"documents": [doc_body(99)]}, "?qr_svg=true")["documents"]
    assert with_svg[0]["qr_svg"].startswith("<svg")

    got = client.get(f"/api/v1/documents/{batch[3]['serial']}", headers=bearer(org_token)).get_json()
    assert got["title"] == "Birth certificate 4" and got["token"] == batch[3]["token"]
    assert document_count(database) == 27
    with database.transaction() as s:
        issues = s.scalars(select(AuditEvent).where(AuditEvent.action == "document:issue")).all()
        assert sorted(e.detail["count"] for e in issues) == [1, 1, 25]
        assert all(e.initiator.startswith("token:") and e.org == document_org for e in issues)


def test_another_organisation_cannot_see_or_change_a_document(
    client: FlaskClient, backends: Backends, database: Database, org_token: str,
    make_document_org: Callable[[], str], api_token_for: Callable[..., str],
) -> None:
    doc = issue(client, org_token, doc_body())
    other = api_token_for(make_document_org())
    missing = "0" * 32
    for path in (f"/api/v1/documents/{doc['serial']}", f"/api/v1/documents/{doc['serial']}/qr.png"):
        theirs, nothing = client.get(path, headers=bearer(other)), client.get(
            path.replace(doc["serial"], missing), headers=bearer(other))
        assert theirs.status_code == nothing.status_code == 404
        # the same answer as for a serial that does not exist: no existence oracle
        assert theirs.get_json()["message"].replace(doc["serial"], missing) == nothing.get_json()["message"]
    for action, body in (("revoke", {"reason": "mine now"}),
                         ("supersede", {"reason": "mine now", "replacement_serial": missing})):
        refused = client.post(f"/api/v1/documents/{doc['serial']}/{action}", json=body, headers=bearer(other))
        assert refused.status_code == 404
    assert client.get(f"/api/v1/verify/{doc['token']}").get_json()["verdict"] == "valid"
    with database.transaction() as s:
        assert s.get(Document, doc["serial"]).status == "valid"  # type: ignore[union-attr]


def test_scopes_are_enforced(client: FlaskClient, backends: Backends, database: Database,
                             document_org: str, api_token_for: Callable[..., str]) -> None:
    reader = api_token_for(document_org, scopes=["documents:read"])
    refused = client.post("/api/v1/documents", json=doc_body(), headers=bearer(reader))
    assert refused.status_code == 403 and "documents:issue" in refused.get_json()["message"]
    assert client.post("/api/v1/documents", json=doc_body()).status_code == 401
    assert document_count(database) == 0


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("not an object", [doc_body()], "expected a JSON object"),
    ("missing field", {k: v for k, v in doc_body().items() if k != "sha256"}, "sha256: required"),
    ("wrong type", doc_body(title=5), "title"),
    ("title too long", doc_body(title="x" * 301), "title: at most 300"),
    ("bad digest", doc_body(sha256="z" * 64), "sha256"),
    ("bad doc type", doc_body(doc_type="Birth Certificate"), "doc_type"),
    ("unknown field", doc_body(colour="red"), "unknown field"),
    ("expiry in the past", doc_body(expires_at="2001-01-01"), "expires_at"),
    ("expiry not a date", doc_body(expires_at="next tuesday"), "expires_at"),
    ("empty batch", {"documents": []}, "1 to 1000"),
    ("batch not a list", {"documents": doc_body()}, "1 to 1000"),
    ("batch too large", {"documents": [doc_body(n) for n in range(1001)]}, "1 to 1000"),
    ("one bad item in a batch", {"documents": [doc_body(1), doc_body(2, title=""), doc_body(3)]},
     "documents[1]: title: required"),
    ("batch with extra field", {"documents": [doc_body()], "mode": "fast"}, "unknown field"),
]


def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: FlaskClient, backends: Backends, database: Database, org_token: str,
) -> None:
    for label, body, words in BAD_BODIES:
        response = client.post("/api/v1/documents", json=body, headers=bearer(org_token))
        assert response.status_code == 400, (label, response.status_code)
        assert words in response.get_json()["message"], (label, response.get_json())
    raw_cases = [
        ("not JSON", b"{title: 1}", "application/json", 400),
        ("wrong content type", json.dumps(doc_body()).encode(), "text/plain", 400),
        ("empty", b"", "application/json", 400),
        ("NaN", b'{"title": NaN}', "application/json", 400),
        ("over 5 MiB", b'{"documents": [' + b" " * (5 * 1024 * 1024) + b"]}", "application/json", 413),
    ]
    for label, raw, mimetype, status in raw_cases:
        response = client.post("/api/v1/documents", data=raw, content_type=mimetype,
                               headers=bearer(org_token))
        assert response.status_code == status, (label, response.status_code)
        assert response.is_json and response.get_json()["message"], label
    assert client.post("/api/v1/documents?qr_svg=maybe", json=doc_body(),
                       headers=bearer(org_token)).status_code == 400
    assert document_count(database) == 0
    doc = issue(client, org_token, doc_body())
    for action, body in (("revoke", {}), ("revoke", {"reason": " "}), ("revoke", {"reason": 3}),
                         ("revoke", {"reason": "x" * 501}), ("revoke", {"reason": "ok", "why": 1}),
                         ("supersede", {"reason": "new one", "replacement_serial": "nope"})):
        response = client.post(f"/api/v1/documents/{doc['serial']}/{action}", json=body,
                               headers=bearer(org_token))
        assert response.status_code == 400, (action, body)
    assert client.get(f"/api/v1/verify/{doc['token']}").get_json()["verdict"] == "valid"


def test_full_batch_of_1000_fits_the_body_limit(client: FlaskClient, backends: Backends,
                                                database: Database, org_token: str) -> None:
    long = "محمد " * 59  # Arabic, near the 300-character limit, \\u-escaped by the JSON encoder
    items = [doc_body(n, title=long.strip(), recipient=long.strip()) for n in range(1000)]
    raw = json.dumps({"documents": items}).encode()
    assert len(raw) > 2 * 1024 * 1024  # above the app-wide limit: the endpoint raises it
    started = time.perf_counter()
    response = client.post("/api/v1/documents", data=raw, content_type="application/json",
                           headers=bearer(org_token))
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert len(response.get_json()["documents"]) == 1000 and document_count(database) == 1000
    print(f"1000-document batch over the API: {elapsed:.2f} s")


def test_revoke_and_supersede_change_the_public_verdict(
    client: FlaskClient, backends: Backends, database: Database, org_token: str,
) -> None:
    issued = issue(client, org_token, {"documents": [doc_body(n) for n in range(3)]})
    first, second, third = issued["documents"]
    revoked = client.post(f"/api/v1/documents/{first['serial']}/revoke",
                          json={"reason": "issued in error"}, headers=bearer(org_token)).get_json()
    assert revoked["status"] == "revoked" and revoked["status_reason"] == "issued in error"
    verdict = client.get(f"/api/v1/verify/{first['token']}").get_json()
    assert verdict["verdict"] == "revoked" and verdict["reason"] == "issued in error"
    again = client.post(f"/api/v1/documents/{first['serial']}/revoke", json={"reason": "twice"},
                        headers=bearer(org_token))
    assert again.status_code == 409

    replaced = client.post(f"/api/v1/documents/{second['serial']}/supersede",
                           json={"reason": "name corrected", "replacement_serial": third["serial"]},
                           headers=bearer(org_token)).get_json()
    assert replaced["status"] == "superseded" and replaced["superseded_by"] == third["serial"]
    verdict = client.get(f"/api/v1/verify/{second['token']}").get_json()
    assert verdict["verdict"] == "superseded" and verdict["superseded_by"] == third["serial"]
    page = client.get(f"/V/{second['token']}").get_data(as_text=True)
    assert f'href="/v/{third["token"]}"' in page and "name corrected" in page


def test_verify_json_never_fails_and_never_shows_the_recipient(
    client: FlaskClient, backends: Backends, database: Database, document_org: str, org_token: str,
) -> None:
    doc = issue(client, org_token, doc_body())
    body = client.get(f"/api/v1/verify/{doc['token']}").get_json()
    assert body["verdict"] == "valid" and body["issuer"] == document_org
    assert body["issuer_name"] == f"Test ministry {document_org}" and body["serial"] == doc["serial"]
    assert body["recipient_masked"] == "A**** K**** S****" and RECIPIENT not in json.dumps(body)
    assert client.get(f"/api/v1/verify/{doc['token'].lower()}").get_json()["verdict"] == "valid"
    token = doc["token"]
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for bad in (flipped, token[:-8], token + "AAAAAAAA", token[:-1], "A" * 1000):  # base32: a verdict
        response = client.get(f"/api/v1/verify/{bad}")
        assert response.status_code == 200, (bad[:20], response.status_code)
        assert response.get_json()["verdict"] in ("forged", "malformed", "unknown_issuer")
    for bad in ("A" * 1025, "%00", "hello world", "!!", "ÄÖÜ", "AB=", "A%0A"):  # not even base32 text
        response = client.get(f"/api/v1/verify/{bad}")
        assert response.status_code == 400, (bad[:20], response.status_code)
        assert response.get_json()["verdict"] == "malformed" and response.get_json()["message"]
        page = client.get(f"/v/{bad}?lang=en")  # the page shows the verdict, whatever came in
        assert page.status_code == 200 and 'data-verdict="malformed"' in page.get_data(as_text=True)
    upload = {"file": (io.BytesIO(b"x"), "x.pdf")}
    posted = client.post(f"/V/{token[:40]}", data=upload).get_data(as_text=True)
    # no record to compare a file with: the upload is not even read, nor its CSRF token asked for
    assert 'data-verdict="malformed"' in posted and "file-check" not in posted


# ------------------------------------------------------------------------- rate limit, counts
@pytest.fixture
def tuned_app(settings: Settings, database: Database, backends: Backends,
              request: pytest.FixtureRequest) -> Iterator[Flask]:
    """An app with the verification settings a test asks for (indirect parametrisation)."""
    app = create_app(settings.replace(**request.param), backends=backends)
    app.config.update(TESTING=True)
    yield app
    close_app(app)


@pytest.mark.parametrize("tuned_app", [{"verify_rate_per_minute": 6, "verify_rate_burst": 3}],
                         indirect=True)
def test_verification_is_rate_limited_per_client(tuned_app: Flask) -> None:
    client = tuned_app.test_client()
    here, there = {"REMOTE_ADDR": "192.0.2.10"}, {"REMOTE_ADDR": "192.0.2.20"}
    assert [client.get("/api/v1/verify/AAAA", environ_base=here).status_code for _ in range(3)] == [200] * 3
    limited = client.get("/api/v1/verify/AAAA", environ_base=here)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "10"
    assert "try again in 10 s" in limited.get_json()["message"]
    page = client.get("/v/AAAA?lang=en", environ_base=here)
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Try again in 10 seconds" in page.get_data(as_text=True)
    assert client.get("/api/v1/verify/AAAA", environ_base=there).status_code == 200  # per client


@pytest.mark.parametrize("tuned_app", [{"verify_counts_flush_seconds": 3600.0}], indirect=True)
def test_counts_are_summed_in_memory_then_flushed_without_personal_data(
    tuned_app: Flask, database: Database, document_org: str, api_token_for: Callable[..., str],
) -> None:
    client = tuned_app.test_client()
    doc = issue(client, api_token_for(document_org), doc_body())
    for path in [f"/api/v1/verify/{doc['token']}"] * 3 + [f"/v/{doc['token']}", "/api/v1/verify/AB",
                                                          "/v/Z1"]:
        assert client.get(path).status_code == 200
    counter = shared_state(tuned_app).counter
    with database.transaction() as s:
        assert s.scalar(select(func.count()).select_from(VerificationCount)) == 0  # not per request
    assert counter.flush() == 6
    client.get(f"/api/v1/verify/{doc['token']}")
    assert counter.flush() == 1  # an upsert: the second flush adds to the same row
    with database.transaction() as s:
        rows = {(r.issuer, r.verdict): r.count for r in s.scalars(select(VerificationCount))}
        hours = {r.hour for r in s.scalars(select(VerificationCount))}
    assert rows == {(document_org, "valid"): 5, ("", "malformed"): 2}
    assert len(hours) == 1 and next(iter(hours)).minute == 0
    columns = {c["name"] for c in inspect(database.engine).get_columns("document_verification_counts")}
    assert columns == {"hour", "issuer", "verdict", "count"}
    assert counter.flush() == 0


@pytest.mark.parametrize("tuned_app", [{"verify_counts_flush_seconds": 0.2}], indirect=True)
def test_counts_flush_by_themselves(tuned_app: Flask, database: Database) -> None:
    client = tuned_app.test_client()
    client.get("/api/v1/verify/AAAA")
    deadline = time.monotonic() + 5
    total = 0
    while time.monotonic() < deadline and not total:
        time.sleep(0.1)
        with database.transaction() as s:
            total = int(s.scalar(select(func.sum(VerificationCount.count))) or 0)
    assert total == 1


@pytest.mark.parametrize("tuned_app", [{"verify_upload_max_bytes": 1024}], indirect=True)
def test_page_file_check_needs_the_form_token_and_a_bounded_file(
    tuned_app: Flask, document_org: str, api_token_for: Callable[..., str],
) -> None:
    client = tuned_app.test_client()
    right = b"%PDF-1.7 the signed letter"
    doc = issue(client, api_token_for(document_org), doc_body(sha256=hashlib.sha256(right).hexdigest()))
    url = f"/v/{doc['token']}?lang=en"
    page = client.get(url).get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and "file-check" not in page
    csrf = csrf_token_from(page)

    def post(data: dict[str, Any]) -> Any:
        return client.post(url, data=data, content_type="multipart/form-data")

    matched = post({"csrf_token": csrf, "file": (io.BytesIO(right), "letter.pdf")})
    assert matched.status_code == 200 and 'class="file-check match"' in matched.get_data(as_text=True)
    differs = post({"csrf_token": csrf, "file": (io.BytesIO(right + b" "), "letter.pdf")})
    assert 'class="file-check mismatch"' in differs.get_data(as_text=True)
    stale = post({"csrf_token": "forged", "file": (io.BytesIO(right), "letter.pdf")})
    # refusals stay on the verdict page, in its language
    assert stale.status_code == 400 and "Reload the page" in stale.get_data(as_text=True)
    assert 'data-verdict="valid"' in stale.get_data(as_text=True)
    nothing = post({"csrf_token": csrf})
    assert nothing.status_code == 400 and "Choose a file" in nothing.get_data(as_text=True)
    too_large = post({"csrf_token": csrf, "file": (io.BytesIO(b"x" * 2048), "big.pdf")})
    assert too_large.status_code == 413 and "too large to check" in too_large.get_data(as_text=True)
    far_too_large = post({"csrf_token": csrf, "file": (io.BytesIO(b"x" * 200_000), "big.pdf")})
    assert far_too_large.status_code == 413 and "too large to check" in far_too_large.get_data(as_text=True)
    in_arabic = client.post(f"/v/{doc['token']}?lang=ar", data={"csrf_token": "forged"},
                            content_type="multipart/form-data")
    assert "انتهت صلاحية النموذج" in in_arabic.get_data(as_text=True)
