"""JSON API for documents, /api/v1/documents: an organisation issues, reads, revokes and supersedes its
own signed documents with a scoped token, and lists everything its key signed with log proofs
(/documents/issued). The blueprint also carries the public verdict /api/v1/verify/<token> under its
historic endpoint name api_documents.verify; the view itself is web.public.verify_api's."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from controlplane.documents.callers import token_caller
from controlplane.documents.claims import DOC_TYPE_PATTERN
from controlplane.documents.issuance import (
    MAX_BATCH,
    IssuedDocument,
    NewDocument,
    issue_documents,
)
from controlplane.documents.issued import DEFAULT_LIMIT, MAX_LIMIT, list_issued, parse_filter_time
from controlplane.documents.masking import mask_recipient
from controlplane.documents.models import Document
from controlplane.documents.publication import publish_trust_list
from controlplane.documents.qr import qr_png, qr_svg
from controlplane.documents.revocation import MAX_REASON, revoke_document, supersede_document
from controlplane.documents.tokens import verification_url
from controlplane.errors import ControlPlaneError, InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from controlplane.storage import as_utc
from controlplane.web.api.api_audit import checkpoint_body
from controlplane.web.api.api_auth import current_api_actor, require_scope
from controlplane.web.api.api_body import json_object, read_json
from controlplane.web.public.verify_api import verify
from controlplane.web.public.verify_views import TooLarge
from controlplane.web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("api_documents", __name__, url_prefix="/api/v1")

# A full batch of MAX_BATCH items, every text field at its limit in \\u-escaped Arabic, is ~4 MiB.
MAX_BODY = 5 * 1024 * 1024
SERIAL = re.compile(r"^[0-9a-f]{32}$")
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
ITEM_FIELDS = frozenset({"doc_type", "title", "recipient", "sha256", "expires_at"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
def _item(value: object, where: str) -> NewDocument:
    """One document: identifiers exactly as documented (NewDocument.parse would also fold spaces in
    them), then the shared validation."""
    item = json_object(value, ITEM_FIELDS, where=where)
    for name, pattern in (("doc_type", DOC_TYPE_PATTERN), ("sha256", SHA256_HEX)):
        if isinstance(item.get(name), str) and not pattern.fullmatch(item[name]):
            raise InvalidInput(f"{name}: {item[name][:70]!r} is not in the documented form")
    if item.get("expires_at") == "":
        raise InvalidInput("expires_at: leave it out, or give an ISO 8601 date or time")
    return NewDocument.parse(item)


def parse_items(body: object) -> tuple[list[NewDocument], bool]:
    """(documents, is_batch): one document object, or {"documents": [1..MAX_BATCH objects]}. Every item
    is checked before anything is signed; the first problem is named with its index."""
    if isinstance(body, dict) and "documents" in body:
        json_object(body, frozenset({"documents"}), where="body")
        raw = body["documents"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
            size = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise InvalidInput(f"documents: expected a list of 1 to {MAX_BATCH} objects, got {size}")
        items = []
        for n, item in enumerate(raw):
            try:
                items.append(_item(item, "document"))
            except InvalidInput as exc:
                raise InvalidInput(f"documents[{n}]: {exc.message}", hint=exc.hint) from None
        return items, True
    return [_item(body, "body")], False


def _qr_urls(serial: str) -> dict[str, str]:
    return {"qr_png_url": url_for("api_documents.document_qr_png", serial=serial),
            "qr_svg_url": url_for("api_documents.document_qr_svg", serial=serial)}


def issued_json(doc: IssuedDocument, *, with_svg: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serial": doc.serial, "token": doc.token, "url": doc.url, "doc_type": doc.doc_type,
        "title": doc.title, "recipient_masked": doc.recipient_masked,
        "issued_at": as_utc(doc.issued_at).isoformat(),
        "expires_at": as_utc(doc.expires_at).isoformat() if doc.expires_at else None,
        "key_id": f"{doc.key_name}#{doc.key_version}", "status": "valid",
        **_qr_urls(doc.serial),
    }
    if with_svg:
        body["qr_svg"] = qr_svg(doc.url)
    return body


def document_json(doc: Document) -> dict[str, Any]:
    return {
        "serial": doc.serial, "token": doc.token, "url": _url(doc), "doc_type": doc.doc_type,
        "title": doc.title, "recipient_masked": mask_recipient(doc.recipient),
        "issued_at": as_utc(doc.issued_at).isoformat(),
        "expires_at": as_utc(doc.expires_at).isoformat() if doc.expires_at else None,
        "key_id": f"{doc.key_name}#{doc.key_version}", "status": doc.status,
        "status_reason": doc.status_reason or None,
        "status_changed_at": as_utc(doc.status_changed_at).isoformat() if doc.status_changed_at else None,
        "superseded_by": doc.superseded_by, **_qr_urls(doc.serial),
    }


def _url(doc: Document) -> str:
    return verification_url(services().settings.verify_base_url, doc.token)


def own_document(serial: str) -> Document:
    """The token's organisation's document; any other serial, however real, is simply not found."""
    org = current_api_actor().org
    if SERIAL.fullmatch(serial):
        with services().database.transaction() as s:
            doc = s.get(Document, serial)
            if doc is not None and doc.org == org:
                s.expunge(doc)
                return doc
    raise NotFound(f"no document {serial[:40]!r} visible to this token")


def _read_object(allowed: frozenset[str]) -> dict[str, Any]:
    """The small JSON object a revoke or supersede takes (api_body's 16 KiB limit)."""
    return json_object(read_json(required=True, too_large=TooLarge), allowed, where="body")


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("reason: say why, in 1 to 500 characters")
    if len(reason) > MAX_REASON or _CONTROL.search(reason):
        raise InvalidInput(f"reason: at most {MAX_REASON} characters, no control characters")
    return reason.strip()


def republish_trust_list(initiator: str) -> None:
    """After a revocation here: publish at once, so the next download carries it (other workers'
    caches within 60 s). Vault being down leaves it to the worker's next pass. It lives with the
    API, not web.public: publishing signs with the trust-root key, which the public channel never does."""
    # The console cannot sign a trust list: the worker publishes on its next pass (revocations
    # changed), and verifiers pick it up within TRUST_LIST_MAX_AGE after that.
    if services().settings.role == "full":
        try:  # ServiceUnavailable included: the backends not built is Vault being down here
            publish_trust_list(services().database, services().backends.keys, initiator=initiator)
        except ControlPlaneError as exc:
            log.warning("trust list not republished after a revocation: %s", exc.message)
    services().verifier.trust_list = None


@bp.errorhandler(NotAuthenticated)
def _not_authenticated(exc: NotAuthenticated) -> tuple[Response, int]:
    response = jsonify(exc.to_dict())
    response.headers["WWW-Authenticate"] = 'Bearer realm="controlplane"'
    return response, exc.status


@bp.post("/documents")
@require_scope("documents:issue")
def create_documents() -> tuple[Response, int]:
    """Issue one document (an object) or a batch ({"documents": [...]}); nothing is written unless
    every item is valid and signed. Batches carry the QR SVG inline only with ?qr_svg=true."""
    actor = current_api_actor()
    flag = request.args.get("qr_svg")
    if flag not in (None, "true", "false"):
        raise InvalidInput("qr_svg: expected true or false")
    items, is_batch = parse_items(read_json(required=True, limit=MAX_BODY, too_large=TooLarge))
    caller = token_caller(actor)  # an operator token or another org's: 403 before anything is signed
    issued = issue_documents(services().database, services().signer, caller, items,
                             base_url=services().settings.verify_base_url)
    with_svg = flag == "true" or (not is_batch and flag is None)
    rendered = [issued_json(doc, with_svg=with_svg) for doc in issued]
    if is_batch:
        return jsonify(documents=rendered), 201
    return jsonify(rendered[0]), 201


@bp.get("/documents/issued")
def issued_documents() -> Response | tuple[Response, int]:
    """Everything signed with the token's organisation's keys, a page at a time, each document with
    its signature-log entry and inclusion proof (documents.issued): what `documents monitor` checks.
    An organisation token with documents:read or documents:issue; only its own organisation."""
    try:
        actor = current_api_actor()
    except NotAuthenticated as exc:
        return _not_authenticated(exc)
    if actor.is_operator or not actor.org:
        raise PermissionDenied("only an organisation's own token lists what its key signed")
    if not (actor.has_scope("documents:read") or actor.has_scope("documents:issue")):
        raise PermissionDenied("this API token lacks the scope 'documents:read' or 'documents:issue'")
    since = parse_filter_time(request.args.get("since"), "since")
    until = parse_filter_time(request.args.get("until"), "until")
    raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidInput(f"limit: a whole number from 1 to {MAX_LIMIT}")
    cursor = request.args.get("cursor")
    with services().database.transaction() as s:
        page = list_issued(s, actor.org, cursor=cursor, since=since, until=until, limit=int(raw_limit))
        checkpoint = checkpoint_body(page.checkpoint) if page.checkpoint is not None else None
    return jsonify(org=actor.org, checkpoint=checkpoint, documents=page.documents, events=page.events,
                   next_cursor=page.next_cursor)


@bp.get("/documents/<serial>")
@require_scope("documents:read")
def get_document(serial: str) -> Response:
    return jsonify(document_json(own_document(serial)))


@bp.get("/documents/<serial>/qr.png")
@require_scope("documents:read")
def document_qr_png(serial: str) -> Response:
    png = qr_png(_url(own_document(serial)), scale=8)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/documents/<serial>/qr.svg")
@require_scope("documents:read")
def document_qr_svg(serial: str) -> Response:
    svg = qr_svg(_url(own_document(serial)))
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


@bp.post("/documents/<serial>/revoke")
@require_scope("documents:revoke")
def revoke(serial: str) -> Response:
    actor = current_api_actor()
    own_document(serial)
    body = _read_object(frozenset({"reason"}))
    doc = revoke_document(services().database, actor.org, serial, reason=_reason(body),
                          initiator=actor.audit_name)
    republish_trust_list(actor.audit_name)
    return jsonify(document_json(doc))


@bp.post("/documents/<serial>/supersede")
@require_scope("documents:revoke")
def supersede(serial: str) -> Response:
    actor = current_api_actor()
    own_document(serial)
    body = _read_object(frozenset({"reason", "replacement_serial"}))
    replacement = body.get("replacement_serial")
    if not isinstance(replacement, str) or not SERIAL.fullmatch(replacement):
        raise InvalidInput("replacement_serial: expected the 32 hex digits of your replacement document")
    doc = supersede_document(services().database, actor.org, serial, replacement_serial=replacement,
                             reason=_reason(body), initiator=actor.audit_name)
    republish_trust_list(actor.audit_name)
    return jsonify(document_json(doc))


# The public verdict keeps its endpoint name api_documents.verify; the view lives in web.public.
bp.add_url_rule("/verify/<token>", "verify", verify)
