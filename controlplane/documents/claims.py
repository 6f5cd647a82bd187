"""The signed claims of a document as CBOR (CWT keys of RFC 8392 where one exists), strictly parsed."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        parts = [b"\xa5" if self.expires_at is None else b"\xa6", b"\x01", _text(self.issuer)]
        if self.expires_at is not None:
            parts += (b"\x04", _head(0, self.expires_at))
        parts += (b"\x06", _head(0, self.issued_at), b"\x07", _head(2, len(self.serial)), self.serial,
                  _DOC_TYPE_KEY, _text(self.doc_type), _SHA256_KEY, _head(2, len(self.sha256)), self.sha256)
        return b"".join(parts)

    @classmethod
    def from_cbor(cls, data: bytes) -> Claims:
        """Parse claims; anything but the exact deterministic encoding of valid claims is refused.

        Read in the one layout to_cbor() writes (keys in order, shortest heads, definite lengths),
        which is decoding and checking that a re-encoding gives the same bytes in one pass; a test
        holds it to that two-step definition, said with cbor2."""
        if not isinstance(data, bytes) or len(data) > MAX_CLAIMS_BYTES:
            raise MalformedToken("claims: not bytes or too large")
        reader = _Reader(data)
        count = reader.head(5)  # a map
        if count not in (5, 6):
            raise MalformedToken("claims: not a map with the expected keys")
        reader.key(b"\x01")
        issuer = reader.text()
        expires_at = None
        if count == 6:
            reader.key(b"\x04")
            expires_at = reader.head(0)
        reader.key(b"\x06")
        issued_at = reader.head(0)
        reader.key(b"\x07")
        serial = reader.raw(reader.head(2))
        reader.key(_DOC_TYPE_KEY)
        doc_type = reader.text()
        reader.key(_SHA256_KEY)
        sha256 = reader.raw(reader.head(2))
        reader.end()
        return cls(issuer=issuer, doc_type=doc_type, serial=serial, sha256=sha256, issued_at=issued_at,
                   expires_at=expires_at)


_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}  # additional info 24-27: 1, 2, 4, 8 bytes follow


class _Reader:
    """Reads the items of deterministic CBOR in an expected order; any deviation is MalformedToken."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def head(self, major: int) -> int:
        """The argument of a head of that major type, given in its shortest form."""
        data, at = self.data, self.at
        if at >= len(data) or data[at] >> 5 != major:
            raise MalformedToken("claims: not in deterministic encoding (unexpected item)")
        info = data[at] & 0x1F
        if info < 24:
            self.at = at + 1
            return info
        size = _ARGUMENT_BYTES.get(info)
        if size is None or at + 1 + size > len(data):
            raise MalformedToken("claims: not in deterministic encoding (length)")
        value = int.from_bytes(data[at + 1:at + 1 + size], "big")
        if value < (24 if size == 1 else 1 << (4 * size)):  # a shorter head would hold it
            raise MalformedToken("claims: not in deterministic encoding (long head)")
        self.at = at + 1 + size
        return value

    def key(self, encoded: bytes) -> None:
        if not self.data.startswith(encoded, self.at):
            raise MalformedToken("claims: not in deterministic encoding (keys, or their order)")
        self.at += len(encoded)

    def raw(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise MalformedToken("claims: truncated")
        self.at += size
        return self.data[self.at - size:self.at]

    def text(self) -> str:
        try:
            return self.raw(self.head(3)).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedToken("claims: text is not UTF-8") from None

    def end(self) -> None:
        if self.at != len(self.data):
            raise MalformedToken("claims: bytes after the map")


# The encoded private-use keys: negative integers -65537 and -65538 (major type 1, n = 65536, 65537).
_DOC_TYPE_KEY, _SHA256_KEY = b"\x3a\x00\x01\x00\x00", b"\x3a\x00\x01\x00\x01"


def _head(major: int, n: int) -> bytes:
    """A CBOR head with the shortest argument for `n` (RFC 8949 §3, §4.2.1)."""
    top = major << 5
    if n < 24:
        return bytes((top | n,))
    if n < 0x100:
        return bytes((top | 24, n))
    if n < 0x10000:
        return bytes((top | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((top | 26,)) + n.to_bytes(4, "big")
    return bytes((top | 27,)) + n.to_bytes(8, "big")


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _head(3, len(data)) + data


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
