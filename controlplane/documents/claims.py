"""The signed claims of a document as CBOR (CWT keys of RFC 8392 where one exists), strictly parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from controlplane.documents import cbor
from controlplane.documents.errors import MalformedToken

# CWT claim keys (RFC 8392 §4) and two from the private-use range (below -65536).
ISS, EXP, IAT, CTI = 1, 4, 6, 7
DOC_TYPE, SHA256 = -65537, -65538

ISSUER = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")  # a tenant slug
DOC_TYPE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?$")
MAX_CLAIMS_BYTES = 512
_MAX_TIME = 2**40  # far beyond any real date; keeps every integer in 8 bytes


@dataclass(frozen=True)
class Claims:
    """What the issuer signs: who, what kind, which serial, which file, when, until when."""

    issuer: str
    doc_type: str
    serial: bytes  # 16 random bytes
    sha256: bytes  # 32 bytes: digest of the document file
    issued_at: int  # epoch seconds
    expires_at: int | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise MalformedToken("claims: " + "; ".join(problems))

    def to_cbor(self) -> bytes:
        """Deterministic CBOR (RFC 8949 §4.2.1 core rules), so one set of claims has one encoding.

        Written out by hand in the one order those rules give for these keys (1, 4, 6, 7, then
        the two private-use keys): every public verification re-encodes the claims it reads to
        refuse any other encoding, and this is about 3x cheaper than building a map for
        cbor2.dumps(canonical=True), which a test holds it equal to."""
        parts = [b"\xa5" if self.expires_at is None else b"\xa6", b"\x01", cbor.tstr(self.issuer)]
        if self.expires_at is not None:
            parts += (b"\x04", cbor.head(0, self.expires_at))
        parts += (b"\x06", cbor.head(0, self.issued_at), b"\x07", cbor.bstr(self.serial),
                  _DOC_TYPE_KEY, cbor.tstr(self.doc_type), _SHA256_KEY, cbor.bstr(self.sha256))
        return b"".join(parts)

    @classmethod
    def from_cbor(cls, data: bytes) -> Claims:
        """Parse claims; anything but the exact deterministic encoding of valid claims is refused.

        Read in the one layout to_cbor() writes (keys in order, shortest heads, definite lengths),
        which is decoding and checking that a re-encoding gives the same bytes in one pass; a test
        holds it to that two-step definition, said with cbor2."""
        if not isinstance(data, bytes) or len(data) > MAX_CLAIMS_BYTES:
            raise MalformedToken("claims: not bytes or too large")
        reader = cbor.Reader(data, "claims")
        count = reader.head(5)  # a map
        if count not in (5, 6):
            raise MalformedToken("claims: not a map with the expected keys")
        reader.expect(b"\x01", _KEYS)
        issuer = reader.text()
        expires_at = None
        if count == 6:
            reader.expect(b"\x04", _KEYS)
            expires_at = reader.head(0)
        reader.expect(b"\x06", _KEYS)
        issued_at = reader.head(0)
        reader.expect(b"\x07", _KEYS)
        serial = reader.byte_string()
        reader.expect(_DOC_TYPE_KEY, _KEYS)
        doc_type = reader.text()
        reader.expect(_SHA256_KEY, _KEYS)
        sha256 = reader.byte_string()
        reader.end()
        return cls(issuer=issuer, doc_type=doc_type, serial=serial, sha256=sha256, issued_at=issued_at,
                   expires_at=expires_at)


# The encoded private-use keys: negative integers -65537 and -65538 (major type 1, n = 65536, 65537).
_DOC_TYPE_KEY, _SHA256_KEY = b"\x3a\x00\x01\x00\x00", b"\x3a\x00\x01\x00\x01"
_KEYS = "keys, or their order"


def _problems(claims: Claims) -> list[str]:
    problems = []
    if not isinstance(claims.issuer, str) or not ISSUER.fullmatch(claims.issuer):
        problems.append("issuer must be a tenant slug")
    if not isinstance(claims.doc_type, str) or not DOC_TYPE_PATTERN.fullmatch(claims.doc_type):
        problems.append("doc_type must be 1-64 lowercase letters, digits, '_', '.', '-'")
    if not isinstance(claims.serial, bytes) or len(claims.serial) != 16:
        problems.append("serial must be 16 bytes")
    if not isinstance(claims.sha256, bytes) or len(claims.sha256) != 32:
        problems.append("sha256 must be 32 bytes")
    for name in ("issued_at", "expires_at"):
        value = getattr(claims, name)
        if value is None and name == "expires_at":
            continue
        if type(value) is not int or not 0 <= value < _MAX_TIME:
            problems.append(f"{name} must be epoch seconds")
    if (
        not problems
        and claims.expires_at is not None
        and claims.expires_at <= claims.issued_at
    ):
        problems.append("expires_at must be after issued_at")
    return problems
