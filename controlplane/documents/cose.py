"""COSE_Sign1 (RFC 9052 §4.2, tag 18) with EdDSA: Sig_structure, strict encode/decode, verification."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.documents import cbor, ed25519
from controlplane.documents.errors import MalformedToken

COSE_SIGN1_TAG = 18
HEADER_ALG, HEADER_KID = 1, 4
ALG_EDDSA = -8
MAX_COSE_BYTES = 640
SIGNATURE_BYTES = ed25519.SIGNATURE_BYTES
# A transit key name, '#', a version without leading zeros: b"health#3".
_KID = re.compile(rb"^([A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?)#([1-9][0-9]{0,8})$")
# The fixed head of every Sig_structure: array(4), text "Signature1" (RFC 9052 §4.4).
_SIG_STRUCTURE_HEAD = b"\x84" + cbor.tstr("Signature1")
# The deterministic protected header: map(2) {1: -8, 4: bstr kid} (keys in bytewise order).
_PROTECTED_HEAD = b"\xa2\x01\x27\x04"
_EMPTY_BSTR = b"\x40"  # external_aad: none


@dataclass(frozen=True)
class Sign1:
    """A decoded COSE_Sign1: the protected header as sent, its kid, the payload and the signature."""

    protected_raw: bytes
    key_name: str
    key_version: int
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> str:
        return f"{self.key_name}#{self.key_version}"


def protected_header(key_name: str, key_version: int) -> bytes:
    """The serialized protected header: alg EdDSA and kid b"<key_name>#<version>"."""
    kid = f"{key_name}#{key_version}".encode("ascii")
    if not _KID.fullmatch(kid):
        raise ValueError(f"cannot make a kid of key {key_name!r} version {key_version!r}")
    return _PROTECTED_HEAD + cbor.bstr(kid)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes that are signed: ["Signature1", protected, external_aad = b"", payload]."""
    return _SIG_STRUCTURE_HEAD + cbor.bstr(protected) + _EMPTY_BSTR + cbor.bstr(payload)


def encode_sign1(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """Tag 18 over [protected, unprotected = {}, payload, signature]."""
    # 0xd2 = tag 18, 0x84 = array of 4, 0xa0 = empty map.
    return b"\xd2\x84" + cbor.bstr(protected) + b"\xa0" + cbor.bstr(payload) + cbor.bstr(signature)


def decode_sign1(data: bytes) -> Sign1:
    """Parse a COSE_Sign1 we could have made; every other encoding raises MalformedToken.

    What we make is always tag 18 (0xd2), an array of 4 (0x84), the protected header as a byte
    string, an empty map (0xa0), the payload and the 64-byte signature as byte strings, each with
    the shortest length head: exactly encode_sign1()'s output. So the bytes are read in that
    layout and nothing else is accepted (no general CBOR decoder, no re-encoding to compare):
    indefinite lengths, longer heads, other types, extra items or trailing bytes all fail here.
    A test holds this to "cbor2 decodes it to that structure and encode_sign1 gives it back"."""
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_COSE_BYTES:
        raise MalformedToken("token is empty or too large")
    if data[:2] != b"\xd2\x84":
        raise MalformedToken("token is not a COSE_Sign1 (tag 18) of 4 items")
    reader = cbor.Reader(data, "token", at=2)
    protected = reader.byte_string()
    reader.expect(b"\xa0", "the unprotected header must be an empty map")
    payload = reader.byte_string()
    signature = reader.byte_string()
    reader.end()
    if len(signature) != SIGNATURE_BYTES:
        raise MalformedToken("signature is not 64 bytes")
    key_name, key_version = _parse_protected(protected)
    return Sign1(protected, key_name, key_version, payload, signature)


def verify_signature(sign1: Sign1, public_key: bytes | Ed25519PublicKey) -> bool:
    """Whether the signature is good for that key; False (never an exception) otherwise.

    libsodium (documents.ed25519) rather than OpenSSL (cryptography): half the CPU per check
    (0.07 against 0.15 ms on the 2-core CI machine), and this runs on every public verification.
    It is also the stricter of the two (it refuses small-order keys and R points and a
    non-canonical S), so it never accepts what OpenSSL refuses; a test checks both agree on
    genuine and altered tokens."""
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    return ed25519.verify(sign1.signature, sig_structure(sign1.protected_raw, sign1.payload), raw)


# Validated protected headers: there is one per key version, so almost every token repeats one.
_PROTECTED_SEEN: dict[bytes, tuple[str, int]] = {}
_PROTECTED_SEEN_MAX = 4096  # beyond this many (key versions or an attacker's junk kids), parse afresh


def _parse_protected(protected: bytes) -> tuple[str, int]:
    seen = _PROTECTED_SEEN.get(protected)
    if seen is not None:
        return seen
    parsed = _parse_protected_afresh(protected)
    if len(_PROTECTED_SEEN) < _PROTECTED_SEEN_MAX:
        _PROTECTED_SEEN[protected] = parsed
    return parsed


def _parse_protected_afresh(protected: bytes) -> tuple[str, int]:
    """The kid of a protected header in exactly the encoding protected_header() writes, read with
    the project's strict reader: no general CBOR decoder ever sees these attacker-chosen bytes."""
    reader = cbor.Reader(protected, "protected header")
    reader.expect(_PROTECTED_HEAD, "must be exactly {alg: EdDSA, kid}")
    kid = reader.byte_string()
    reader.end()
    match = _KID.fullmatch(kid)
    if not match:
        raise MalformedToken("kid is not <key>#<version>")
    return match.group(1).decode("ascii"), int(match.group(2))
