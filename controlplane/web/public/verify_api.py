"""The public verdict of a token as JSON, /api/v1/verify/<token>: served by the full control plane
(as api_documents.verify) and by the verification service (as verify_json) alike."""

from __future__ import annotations

import re

from flask import Response, jsonify

from controlplane.documents.tokens import MAX_TOKEN_CHARS
from controlplane.documents.verification import Verdict, VerificationResult
from controlplane.web.public.verify_views import verify_for_client

TOKEN_TEXT = re.compile(rf"[A-Za-z2-7]{{1,{MAX_TOKEN_CHARS}}}")


def verify(token: str) -> Response | tuple[Response, int]:
    """Public: the verdict of a token as JSON (no personal data beyond the masked recipient). Text
    that cannot be a token at all is also a 400, with the same verdict in the body. Plain GETs are
    answered in front of Flask by verify_fastpath with the same body; this view serves the rest."""
    result = verify_for_client(token)  # counted and rate-limited whatever it is
    status, body = verdict_body(token, result)
    return jsonify(body), status


def verdict_body(token: str, result: VerificationResult) -> tuple[int, dict[str, object]]:
    """The status and JSON body of a verdict, for this view and the fast path alike."""
    # Any other verdict means the token decoded, so it is base32 of an allowed length: only a
    # malformed one needs the text checked (a 200-character regex per call otherwise).
    if result.verdict is Verdict.MALFORMED and not TOKEN_TEXT.fullmatch(token):
        return 400, {"error": "Malformed token", "message": f"a token is 1 to {MAX_TOKEN_CHARS} "
                     "base32 characters (A-Z, 2-7)", **result.to_json()}
    return 200, result.to_json()
