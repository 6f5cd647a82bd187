"""The public verification page /v/<token> (and /V/<token>, as QR codes spell it), the shared
rate-limited, counted verification step of page and JSON API, and the signed /trust-list.json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from wtforms import ValidationError

from controlplane.documents.models import Document, VerificationCount
from controlplane.documents.publication import current_trust_list
from controlplane.documents.verification import PublicKeyCache, Verdict, VerificationResult, verify_token
from controlplane.errors import ControlPlaneError, InvalidInput
from controlplane.storage import Base, Database, as_utc
from controlplane.web.public.ratelimit import TokenBucketLimiter, retry_after_header
from controlplane.web.public.verification_counts import VerificationCounter
from controlplane.web.services import services, services_of

bp = Blueprint("verify", __name__)

TRUST_LIST_MAX_AGE = 60  # seconds: clients and this process reuse one signed list that long
TRUST_ROOT_FILE = "trust-root.pub"
# The parser also holds each read chunk (64 KiB) against this, so it cannot be much smaller.
MAX_FORM_MEMORY = 256 * 1024
# Only a verified signature makes the issuer claim trustworthy; anything else is counted under ""
# so an attacker cannot grow the counts table with made-up issuer names.
_AUTHENTIC = frozenset({Verdict.VALID, Verdict.REVOKED, Verdict.SUPERSEDED, Verdict.EXPIRED,
                        Verdict.NOT_FOUND})
_RECORD_EXISTS = frozenset({Verdict.VALID, Verdict.REVOKED, Verdict.SUPERSEDED, Verdict.EXPIRED})


class RateLimited(ControlPlaneError):
    status = 429
    title = "Too many requests"

    def __init__(self, wait: float) -> None:
        self.retry_after = int(retry_after_header(wait))
        super().__init__(f"too many verifications from your address; try again in {self.retry_after} s")


class TooLarge(ControlPlaneError):
    """A body (upload or batch) above the endpoint's limit; nothing was read further or written."""

    status = 413
    title = "Too large"


class FormExpired(InvalidInput):
    """The upload's CSRF token is missing or not this session's."""


@dataclass
class VerificationState:
    """Per process: the client buckets, the count sums, the public-key cache and the trust list."""

    limiter: TokenBucketLimiter
    counter: VerificationCounter
    keys: PublicKeyCache
    trust_list: tuple[float, bytes] | None = None
    trust_list_lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, database: Database, token: str, client_address: str) -> VerificationResult:
        """Verify one token for a client: rate-limited by its address (RateLimited), then counted
        by issuer and verdict only (no personal data). The page, the JSON view and the JSON fast
        path (verify_fastpath) all come through here."""
        wait = self.limiter.take(client_address)
        if wait > 0:
            raise RateLimited(wait)
        result = verify_token(database, self.keys, token)
        issuer = (result.issuer or "") if result.verdict in _AUTHENTIC else ""
        self.counter.add(issuer, str(result.verdict))
        return result


def state() -> VerificationState:
    return services().verifier


def verify_for_client(token: str) -> VerificationResult:
    """Verify one token for this request's client (see VerificationState.verify)."""
    return state().verify(services().database, token, request.remote_addr or "")


# ------------------------------------------------------------------------------------- page
def _date(value: datetime | None) -> str | None:
    return str(format_date(as_utc(value), "long")) if value is not None else None


def _facts(result: VerificationResult) -> list[tuple[str, str]]:
    """What the page shows about the document; nothing at all unless the signature is genuine."""
    if result.verdict not in _AUTHENTIC:
        return []
    rows = [
        (_("Issuer"), result.issuer_name or result.issuer),
        (_("Document type"), result.doc_type),
        (_("Title"), result.title),
        (_("Recipient"), result.recipient_masked),
        (_("Issued on"), _date(result.issued_at)),
        (_("Valid until"), _date(result.expires_at)),
    ]
    return [(label, str(value)) for label, value in rows if value]


def _replacement_url(result: VerificationResult) -> str | None:
    if not result.superseded_by:
        return None
    with services().database.transaction() as s:
        token = s.scalar(select(Document.token).where(Document.serial == result.superseded_by))
    return url_for("verify.verify_page", token=token) if token else None


class _HashingSink:
    """Where the upload's bytes go instead of a temporary file: into SHA-256, then dropped."""

    def __init__(self, limit: int) -> None:
        self.digest, self.size, self.limit = hashlib.sha256(), 0, limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"the file is larger than the {self.limit:,} bytes this page checks")
        self.digest.update(data)
        return len(data)

    def seek(self, *_args: object) -> int:
        return 0

    def read(self, *_args: object) -> bytes:
        return b""


def hash_upload() -> bytes:
    """The SHA-256 of the form's `file`, computed while the body streams in (never stored), after
    checking the form's CSRF token. InvalidInput when the form is stale or has no file."""
    limit = services().settings.verify_upload_max_bytes
    request.max_content_length = limit + 64 * 1024  # the multipart framing around the file
    sinks: list[_HashingSink] = []

    def sink(*_args: object, **_kwargs: object) -> IO[bytes]:
        sinks.append(_HashingSink(limit))
        return cast(IO[bytes], sinks[-1])

    parser = FormDataParser(sink, max_form_memory_size=MAX_FORM_MEMORY, max_form_parts=8)
    try:
        _, form, files = parser.parse(request.stream, request.mimetype, request.content_length,
                                      request.mimetype_params)
    except RequestEntityTooLarge:  # the body as a whole, refused by its Content-Length
        raise TooLarge(f"the file is larger than the {limit:,} bytes this page checks") from None
    try:
        validate_csrf(form.get("csrf_token"))
    except ValidationError:
        raise FormExpired("the form expired; reload the page and choose the file again") from None
    upload = files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("choose a file to check")
    return cast(_HashingSink, upload.stream).digest.digest()


def file_matches(result: VerificationResult, digest: bytes) -> bool:
    """Whether `digest` is the SHA-256 the issuer signed (the registry holds the same digest)."""
    return result.sha256 is not None and hmac.compare_digest(result.sha256, digest.hex())


def _render_page(result: VerificationResult, file_check: bool | None, *,
                 upload_error: str | None = None, status: int = 200) -> Response:
    html = render_template(
        "verify.html", result=result, verdict=str(result.verdict), facts=_facts(result),
        replacement_url=_replacement_url(result), file_check=file_check, upload_error=upload_error,
        can_check_file=result.verdict in _RECORD_EXISTS, form_action=request.path,
    )
    # A verdict, whatever it says, is a good answer; only a refused upload is the client's error.
    return Response(html, status=status, mimetype="text/html")


def _upload_problem(exc: ControlPlaneError) -> str:
    """The refused upload, said in the page's language (the page stays the verdict page)."""
    if isinstance(exc, TooLarge):
        return str(_("The file is too large to check here."))
    if isinstance(exc, FormExpired):
        return str(_("The form expired. Reload the page and choose the file again."))
    return str(_("Choose a file to check."))


@bp.route("/V/<token>", methods=["GET", "POST"])  # as printed in QR codes: all uppercase
@bp.route("/v/<token>", methods=["GET", "POST"])
def verify_page(token: str) -> Response:
    """The verdict for a phone that scanned the QR; POST adds the optional file check."""
    result = verify_for_client(token)
    if request.method == "POST" and result.verdict in _RECORD_EXISTS:
        try:
            digest = hash_upload()
        except (InvalidInput, TooLarge) as exc:
            return _render_page(result, None, upload_error=_upload_problem(exc), status=exc.status)
        return _render_page(result, file_matches(result, digest))
    return _render_page(result, None)


# ------------------------------------------------------------------------------- trust list
def _write_root_key(instance: Path, public_key: bytes) -> None:
    """The offline trust anchor for `controlplane documents verify`, written once, readable by all."""
    path = instance / TRUST_ROOT_FILE
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(public_key).decode().rstrip("=") + "\n", encoding="utf-8")


def cached_trust_list() -> bytes:
    """The newest published list (documents.publication), re-read at most once a minute. Only the
    full control plane holds the root key and publishes; the verification role just serves."""
    shared = state()
    with shared.trust_list_lock:  # one read per expiry, however many clients ask at once
        cached = shared.trust_list
        if cached is not None and time.monotonic() - cached[0] < TRUST_LIST_MAX_AGE:
            return cached[1]
        keys = None
        # Only a `full` process holds the trust-root key; the console and the verification service
        # serve what the worker's publisher stored (documents.publication).
        if services().settings.role == "full":
            keys = services().backends.keys
        published = current_trust_list(services().database, keys, initiator="system:web")
        _write_root_key(Path(current_app.instance_path), published.root_public_key)
        shared.trust_list = (time.monotonic(), published.body)
        return published.body


@bp.get("/trust-list.json")
def trust_list() -> Response:
    response = Response(cached_trust_list(), mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={TRUST_LIST_MAX_AGE}"
    return response


# ------------------------------------------------------------------------------------ wiring
def _rate_limited(exc: RateLimited) -> tuple[Response, int, dict[str, str]]:
    headers = {"Retry-After": str(exc.retry_after)}
    if request.path.startswith("/api/"):
        return jsonify(exc.to_dict()), 429, headers
    html = render_template("verify_limited.html", retry_after=exc.retry_after)
    return Response(html, mimetype="text/html"), 429, headers


def init_app(app: Flask) -> None:
    held = services_of(app)
    settings = held.settings
    counts_db = held.database
    if settings.role == "verification" and settings.verification_counts_database_url:
        # A read-only registry connection (SQLite, tenancy.verifier_db): the counts go to a file of
        # the service's own, made here on first start.
        counts_db = Database(settings.verification_counts_database_url)
        Base.metadata.tables[VerificationCount.__tablename__].create(counts_db.engine, checkfirst=True)
        held.closers.append(counts_db.dispose)
    verifier = held.installed_verifier = VerificationState(
        limiter=TokenBucketLimiter(settings.verify_rate_per_minute, settings.verify_rate_burst),
        counter=VerificationCounter(counts_db, flush_seconds=settings.verify_counts_flush_seconds),
        keys=PublicKeyCache(held.database),
    )
    held.closers.append(verifier.counter.close)
    app.register_error_handler(RateLimited, _rate_limited)
