"""Tampered, truncated, oversized and random tokens are never "valid" and never raise (offline path)."""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.documents.claims import Claims
from controlplane.documents.cose import decode_sign1, encode_sign1, protected_header, sig_structure
from controlplane.documents.errors import MalformedToken
from controlplane.documents.tokens import MAX_TOKEN_CHARS, decode_token, encode_token
from controlplane.documents.trustlist import TrustList
from controlplane.documents.verification import Verdict, verify_offline

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
TRUST = TrustList(
    issued_at=NOW - timedelta(hours=1), next_update=NOW + timedelta(hours=23),
    keys={("health", 1): ("health", KEY.public_key()), ("finance", 1): ("finance", OTHER_KEY.public_key())},
    names={"health": "Ministry of Health", "finance": "Ministry of Finance"},
)


def make_token(key: Ed25519PrivateKey = KEY, kid: tuple[str, int] = ("health", 1), **changes: object) -> str:
    values: dict[str, object] = {
        "issuer": "health", "doc_type": "birth-certificate", "serial": os.urandom(16),
        "sha256": hashlib.sha256(b"letter").digest(), "issued_at": int(NOW.timestamp()) - 60,
        "expires_at": None,
    }
    values.update(changes)
    claims = Claims(**values)  # type: ignore[arg-type]
    protected = protected_header(*kid)
    payload = claims.to_cbor()
    return encode_token(encode_sign1(protected, payload, key.sign(sig_structure(protected, payload))))


TOKEN = make_token()


def verdict(token: str) -> Verdict:
    return verify_offline(token, TRUST, now=NOW).verdict


def test_the_untouched_token_is_valid() -> None:
    result = verify_offline(TOKEN, TRUST, now=NOW)
    assert result.verdict is Verdict.VALID
    assert (result.issuer, result.issuer_name, result.key_id) == ("health", "Ministry of Health", "health#1")


def test_every_single_character_change_is_never_valid() -> None:
    # Exhaustive: every position, every other base32 character (a case change is the same token).
    seen: set[Verdict] = set()
    for i, original in enumerate(TOKEN):
        for char in ALPHABET:
            if char != original:
                got = verdict(TOKEN[:i] + char + TOKEN[i + 1:])
                assert got is not Verdict.VALID, (i, char)
                seen.add(got)
    assert seen <= {Verdict.MALFORMED, Verdict.FORGED, Verdict.UNKNOWN_ISSUER}
    assert Verdict.FORGED in seen and Verdict.MALFORMED in seen


def test_every_single_byte_change_of_the_cose_object_is_never_valid() -> None:
    cose = decode_token(TOKEN)
    for i in range(len(cose)):
        for delta in (1, 0x80, 0xFF):
            changed = cose[:i] + bytes([(cose[i] + delta) % 256]) + cose[i + 1:]
            assert verdict(encode_token(changed)) is not Verdict.VALID, (i, delta)


def test_every_truncation_is_malformed() -> None:
    for end in range(len(TOKEN)):
        assert verdict(TOKEN[:end]) is Verdict.MALFORMED, end


@pytest.mark.parametrize("extra", [1, 8, MAX_TOKEN_CHARS - len(TOKEN) + 1, 10_000])
def test_appended_and_oversized_tokens_are_malformed(extra: int) -> None:
    assert verdict(TOKEN + "A" * extra) is Verdict.MALFORMED


def test_a_token_signed_by_another_organisation_is_forged_or_unknown() -> None:
    # finance's genuine key, claiming to be health: the signature is fine, the issuer is a lie.
    assert verdict(make_token(OTHER_KEY, ("finance", 1))) is Verdict.FORGED
    # finance's key under health's kid: the signature does not match health's key.
    assert verdict(make_token(OTHER_KEY, ("health", 1))) is Verdict.FORGED
    # a key nobody published
    assert verdict(make_token(Ed25519PrivateKey.generate(), ("health", 2))) is Verdict.UNKNOWN_ISSUER
    assert verdict(make_token(Ed25519PrivateKey.generate(), ("stranger", 1), issuer="stranger")) \
        is Verdict.UNKNOWN_ISSUER


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=2 * MAX_TOKEN_CHARS))
def test_random_text_is_never_valid_and_never_raises(text: str) -> None:
    assert verdict(text) is not Verdict.VALID


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_as_a_token_are_never_valid(data: bytes) -> None:
    assert verdict(encode_token(data)) is not Verdict.VALID


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_edits_of_a_valid_token_are_never_valid(data: st.DataObject) -> None:
    cose = bytearray(decode_token(TOKEN))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(cose) - 1))
        cose[i] = data.draw(st.integers(0, 255).filter(lambda b, old=cose[i]: b != old))
    assert verdict(encode_token(bytes(cose))) is not Verdict.VALID


CBOR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.binary(max_size=40)
    | st.text(max_size=20) | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.integers(-70000, 10) | st.text(max_size=5), inner, max_size=5),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CBOR_VALUES, min_size=0, max_size=5), st.integers(0, 30))
def test_random_cbor_structures_raise_only_malformed_token(items: list[object], tag: int) -> None:
    for data in (cbor2.dumps(cbor2.CBORTag(18, items)), cbor2.dumps(cbor2.CBORTag(tag, items)),
                 cbor2.dumps(items)):
        with suppress(MalformedToken):
            decode_sign1(data)
        with suppress(MalformedToken):
            Claims.from_cbor(data)
        assert verdict(encode_token(data)) is not Verdict.VALID


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1000))
def test_decoders_raise_only_malformed_token(data: bytes) -> None:
    for decode in (decode_sign1, Claims.from_cbor):
        with suppress(MalformedToken):
            decode(data)
    with suppress(MalformedToken):
        decode_token(data.decode("latin-1"))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(TOKEN) - 1), st.characters())
def test_any_other_character_anywhere_is_never_valid(i: int, char: str) -> None:
    # Only the lowercase twin of the same ASCII letter or digit is the same token.
    if char.isascii() and char.upper() == TOKEN[i]:
        return
    assert verdict(TOKEN[:i] + char + TOKEN[i + 1:]) is not Verdict.VALID
