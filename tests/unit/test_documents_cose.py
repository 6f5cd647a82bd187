"""Claims (CBOR), COSE_Sign1 (RFC 9052) and tokens, checked with a local Ed25519 key (no Vault)."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import cbor2
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.documents import ed25519
from controlplane.documents.claims import Claims
from controlplane.documents.cose import (
    decode_sign1,
    encode_sign1,
    protected_header,
    sig_structure,
    verify_signature,
)
from controlplane.documents.errors import MalformedToken
from controlplane.documents.tokens import MAX_TOKEN_CHARS, decode_token, encode_token, verification_url

QR_ALPHANUMERIC = re.compile(r"[0-9A-Z $%*+\-./:]+")


def make_claims(**changes: object) -> Claims:
    values: dict[str, object] = {
        "issuer": "health", "doc_type": "birth-certificate", "serial": os.urandom(16),
        "sha256": hashlib.sha256(b"the letter").digest(), "issued_at": 1_790_000_000,
        "expires_at": 1_900_000_000,
    }
    values.update(changes)
    return Claims(**values)  # type: ignore[arg-type]


def sign_locally(key: Ed25519PrivateKey, claims: Claims, kid: tuple[str, int] = ("health", 1)) -> bytes:
    protected = protected_header(*kid)
    payload = claims.to_cbor()
    return encode_sign1(protected, payload, key.sign(sig_structure(protected, payload)))


class TestClaims:
    def test_round_trip_with_and_without_expiry(self) -> None:
        for claims in (make_claims(), make_claims(expires_at=None)):
            assert Claims.from_cbor(claims.to_cbor()) == claims

    def test_uses_cwt_keys_and_private_use_keys(self) -> None:
        claims = make_claims()
        decoded = cbor2.loads(claims.to_cbor())
        assert decoded[1] == "health"  # iss
        assert decoded[4] == 1_900_000_000  # exp
        assert decoded[6] == 1_790_000_000  # iat
        assert decoded[7] == claims.serial  # cti
        assert {k for k in decoded if k < -65536} == {-65537, -65538}  # doc_type, sha256

    @pytest.mark.parametrize("bad", [
        {1: "health", 6: 1, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32, 99: 1},  # unknown key
        {1: "health", 6: 1, 7: b"x" * 15, -65537: "t", -65538: b"x" * 32},  # short serial
        {1: "Health", 6: 1, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32},  # not a slug
        {1: "health", 6: True, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32},  # bool as time
        {1: "health", 6: -5, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32},  # negative time
        {1: "health", 6: 9, 4: 9, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32},  # exp == iat
        {6: 1, 7: b"x" * 16, -65537: "t", -65538: b"x" * 32},  # no issuer
        [1, 2, 3],
    ])
    def test_refuses_anything_unexpected(self, bad: object) -> None:
        with pytest.raises(MalformedToken):
            Claims.from_cbor(cbor2.dumps(bad))

    def test_refuses_a_non_deterministic_encoding_of_good_claims(self) -> None:
        claims = make_claims()
        decoded = cbor2.loads(claims.to_cbor())
        reordered = cbor2.dumps(dict(sorted(decoded.items(), key=lambda kv: -kv[0])))
        assert reordered != claims.to_cbor()
        with pytest.raises(MalformedToken, match="deterministic"):
            Claims.from_cbor(reordered)


class TestCoseSign1:
    def test_structure_is_rfc_9052_sign1_with_eddsa_and_kid(self) -> None:
        key = Ed25519PrivateKey.generate()
        claims = make_claims()
        cose = sign_locally(key, claims, ("health", 3))

        outer = cbor2.loads(cose)
        assert isinstance(outer, cbor2.CBORTag) and outer.tag == 18
        protected, unprotected, payload, signature = outer.value
        assert cbor2.loads(protected) == {1: -8, 4: b"health#3"}
        assert dict(unprotected) == {}
        assert payload == claims.to_cbor()
        assert len(signature) == 64
        # Sig_structure exactly as RFC 9052 §4.4 spells it, built independently with cbor2.
        expected = cbor2.dumps(["Signature1", protected, b"", payload])
        assert sig_structure(protected, payload) == expected
        key.public_key().verify(signature, expected)  # raises if not

    def test_decode_and_verify_with_a_local_key(self) -> None:
        key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        sign1 = decode_sign1(sign_locally(key, make_claims()))
        assert (sign1.key_name, sign1.key_version, sign1.kid) == ("health", 1, "health#1")
        assert verify_signature(sign1, key.public_key()) is True
        assert verify_signature(sign1, key.public_key().public_bytes_raw()) is True
        assert verify_signature(sign1, other.public_key()) is False
        assert verify_signature(sign1, b"\x00" * 31) is False  # a bad key is a no, not a crash

    def test_long_key_names_and_payloads_use_longer_length_heads(self) -> None:
        protected = protected_header("a" * 100 + ".mail", 123456)
        payload = b"p" * 300
        cose = encode_sign1(protected, payload, b"s" * 64)
        assert cbor2.loads(cose).value[2] == payload
        assert decode_sign1(cose).key_name == "a" * 100 + ".mail"

    @pytest.mark.parametrize("mutate", [
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(17, [p, u, pl, s])),  # wrong tag
        lambda p, u, pl, s: cbor2.dumps([p, u, pl, s]),  # untagged
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [p, {4: b"x#1"}, pl, s])),  # unprotected kid
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [p, u, pl, s[:63]])),  # short signature
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [p, u, pl])),  # three items
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: b"h#1"}), u, pl, s])),
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8}), u, pl, s])),  # no kid
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps({1: -8, 4: b"h#01"}), u, pl, s])),
        lambda p, u, pl, s: cbor2.dumps(cbor2.CBORTag(18, [p, u, pl, s])) + b"\x00",  # trailing byte
        lambda p, u, pl, s: b"\xd2\x9f" + cbor2.dumps(p) + b"\xa0" + cbor2.dumps(pl) + cbor2.dumps(s)
        + b"\xff",  # indefinite-length array: same values, another encoding
    ])
    def test_refuses_other_structures_and_encodings(self, mutate) -> None:  # type: ignore[no-untyped-def]
        key = Ed25519PrivateKey.generate()
        outer = cbor2.loads(sign_locally(key, make_claims()))
        protected, _unprotected, payload, signature = outer.value
        with pytest.raises(MalformedToken):
            decode_sign1(mutate(protected, {}, payload, signature))

    def test_refuses_oversized_input_before_parsing(self) -> None:
        with pytest.raises(MalformedToken, match="too large"):
            decode_sign1(b"\x00" * 5000)


class TestTokens:
    def test_token_and_url_are_qr_alphanumeric(self) -> None:
        cose = sign_locally(Ed25519PrivateKey.generate(), make_claims())
        token = encode_token(cose)
        assert QR_ALPHANUMERIC.fullmatch(token) and "=" not in token
        url = verification_url("https://verify.gov.example/", token)
        assert url == "HTTPS://VERIFY.GOV.EXAMPLE/V/" + token
        assert QR_ALPHANUMERIC.fullmatch(url)
        assert len(token) <= MAX_TOKEN_CHARS

    def test_round_trip_and_lowercase(self) -> None:
        for size in [*range(1, 60), 211, 640]:
            data = os.urandom(size)
            token = encode_token(data)
            assert token == base64.b32encode(data).decode().rstrip("=")  # RFC 4648, unpadded
            assert decode_token(token) == data
            assert decode_token(token) == base64.b32decode(token + "=" * (-len(token) % 8))
            assert decode_token(token.lower()) == data

    @pytest.mark.parametrize("bad", [
        "", "A", "ABC", "AB=C", "AB CD", "AB_C", "+ABC", " ABC", "ÄBCD", "AB1C", "0ABC", "AAAAAAB",
        "AA\n", "A" * (MAX_TOKEN_CHARS + 1),
        "ſſſſſſſſ", "ıııııııı",  # noqa: RUF001 - upper() would make these "SSSSSSSS" and "IIIIIIII"
    ])
    def test_refuses_bad_tokens(self, bad: str) -> None:
        with pytest.raises(MalformedToken):
            decode_token(bad)

    def test_refuses_non_zero_padding_bits(self) -> None:
        token = encode_token(b"\x01")  # "AE": 10 bits for 8, the last two must be zero
        assert token == "AE"
        with pytest.raises(MalformedToken, match="padding"):
            decode_token("AF")


def _openssl_accepts(public_key: bytes, sign1_bytes: bytes) -> bool:
    sign1 = decode_sign1(sign1_bytes)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            sign1.signature, sig_structure(sign1.protected_raw, sign1.payload))
    except InvalidSignature:
        return False
    return True


def test_libsodium_and_openssl_agree_on_genuine_and_altered_signatures() -> None:
    """verify_signature uses libsodium for speed; it must never accept what OpenSSL refuses."""
    for _ in range(5):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        genuine = sign_locally(key, make_claims())
        sign1 = decode_sign1(genuine)
        assert verify_signature(sign1, public) and _openssl_accepts(public, genuine)
        assert verify_signature(sign1, key.public_key())  # the trust list's key objects too
        head = len(genuine) - 64
        for bit in range(64 * 8):  # every single-bit change of the signature
            altered = bytearray(genuine)
            altered[head + bit // 8] ^= 1 << (bit % 8)
            assert not verify_signature(decode_sign1(bytes(altered)), public)
            assert not _openssl_accepts(public, bytes(altered))
        other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        assert not verify_signature(sign1, other) and not _openssl_accepts(other, genuine)
    small_order = bytes(32)  # a valid point encoding of order 4: OpenSSL takes it as a key
    assert not verify_signature(sign1, small_order)
    assert not verify_signature(sign1, public[:31])  # wrong length: refused, never an exception


def test_the_gil_holding_check_and_pynacls_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """documents.ed25519 calls libsodium's verify_detached directly (GIL held); PyNaCl's
    crypto_sign_open is its fallback. Both must give the same answer on every input."""
    assert ed25519.holds_gil()  # PyNaCl's wheel exports it: the fast call is the one in use here
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    message = b"Sig_structure bytes"
    signature = key.sign(message)
    cases = [(signature, message, public), (signature, message + b"!", public),
             (bytes(64), message, public), (signature, message, bytes(32)),  # small-order key
             (signature[:63], message, public), (signature + b"\x00", message, public),  # lengths
             (signature, message, public[:31]), (signature, b"", public)]
    flipped = [bytes(b ^ (1 << n % 8) if i == n // 8 else b for i, b in enumerate(signature))
               for n in range(0, 512, 7)]  # single-bit changes all over the signature
    cases += [(altered, message, public) for altered in flipped]
    fast = [ed25519.verify(*case) for case in cases]
    monkeypatch.setattr(ed25519, "_VERIFY_DETACHED", None)
    assert [ed25519.verify(*case) for case in cases] == fast
    assert fast[0] is True and not any(fast[1:])
