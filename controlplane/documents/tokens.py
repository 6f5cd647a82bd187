"""Tokens: the COSE bytes as uppercase base32 (QR alphanumeric mode) and the verification URL."""

from __future__ import annotations

import base64
import re

from controlplane.documents.cose import MAX_COSE_BYTES
from controlplane.documents.errors import MalformedToken

# ceil(MAX_COSE_BYTES * 8 / 5): a longer token cannot hold a COSE object we accept.
MAX_TOKEN_CHARS = -(-MAX_COSE_BYTES * 8 // 5)
_BASE32 = re.compile(r"^[A-Z2-7]+$")
# Unpadded base32 lengths mod 8 that no byte string encodes to (RFC 4648 §6).
_IMPOSSIBLE_LENGTHS = frozenset({1, 3, 6})
_TO_BASE32HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV")


def encode_token(cose: bytes) -> str:
    """RFC 4648 base32, uppercase, without padding."""
    return base64.b32encode(cose).decode("ascii").rstrip("=")


def decode_token(token: str) -> bytes:
    """The COSE bytes of a token (lowercase accepted); MalformedToken for anything else."""
    if not isinstance(token, str) or not token:
        raise MalformedToken("the token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    # ASCII first: str.upper() maps some non-ASCII letters onto ours (long s -> "S", dotless i -> "I").
    text = token.upper() if token.isascii() else ""
    if not _BASE32.fullmatch(text) or len(text) % 8 in _IMPOSSIBLE_LENGTHS:
        raise MalformedToken("the token has characters or a length base32 does not allow")
    # int(..., 32) reads the "base32hex" digits 0-9A-V in C, ~8x faster than base64.b32decode on
    # 3.11; the regex above has already refused everything int() would otherwise tolerate.
    size = len(text) * 5 // 8
    unused = len(text) * 5 - size * 8
    number = int(text.translate(_TO_BASE32HEX), 32)
    # Unused trailing bits must be zero, so one set of bytes has exactly one token.
    if number & ((1 << unused) - 1):
        raise MalformedToken("the token has non-zero padding bits")
    return (number >> unused).to_bytes(size, "big")


def verification_url(base_url: str, token: str) -> str:
    """The URL in the QR: all uppercase, so the whole QR stays in alphanumeric mode."""
    return base_url.rstrip("/").upper() + "/V/" + token
