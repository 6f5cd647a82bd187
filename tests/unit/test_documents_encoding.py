"""The hand-written COSE reader and claims writer against cbor2: same bytes accepted, same bytes made."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.documents.claims import DOC_TYPE, EXP, IAT, ISS, SHA256, Claims
from controlplane.documents.cose import (
    COSE_SIGN1_TAG,
    MAX_COSE_BYTES,
    Sign1,
    decode_sign1,
    encode_sign1,
    protected_header,
)
from controlplane.documents.errors import MalformedToken

CTI = 7


def reference_decode(data: bytes) -> Sign1 | None:
    """What decode_sign1 must accept, said with a general CBOR decoder: tag 18 over
    [bstr, {}, bstr, 64-byte bstr] whose re-encoding by encode_sign1 is the very input."""
    if not 0 < len(data) <= MAX_COSE_BYTES:
        return None
    try:
        decoded = cbor2.loads(data)
    except Exception:
        return None
    if not isinstance(decoded, cbor2.CBORTag) or decoded.tag != COSE_SIGN1_TAG:
        return None
    value = decoded.value
    if (not isinstance(value, (list, tuple)) or len(value) != 4 or type(value[0]) is not bytes
            or not isinstance(value[1], Mapping) or len(value[1]) != 0 or type(value[2]) is not bytes
            or type(value[3]) is not bytes or len(value[3]) != 64):
        return None
    protected, _, payload, signature = value
    if encode_sign1(protected, payload, signature) != data:
        return None
    try:
        return decode_sign1(data)  # only to read the protected header alike; the layout is checked above
    except MalformedToken:
        return None


def ours(data: bytes) -> Sign1 | None:
    try:
        return decode_sign1(data)
    except MalformedToken:
        return None


def mutated(base: bytes, changes: list[tuple[int, int]], cut: int) -> bytes:
    """`base` with bytes set at some offsets, then cut short (cut < 0) or padded with zeros."""
    data = bytearray(base)
    for at, value in changes:
        if at < len(data):
            data[at] = value
    return bytes(data[:cut] if cut < 0 else data + bytes(cut))


PROTECTED = protected_header("tenant-health-signing", 3)
GENUINE = encode_sign1(PROTECTED, b"p" * 90, b"s" * 64)
LONG = encode_sign1(protected_header("k" * 120, 7), b"q" * 300, b"t" * 64)  # 0x58 and 0x59 heads


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([GENUINE, LONG]), st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)),
                                                  max_size=3), st.integers(-3, 3))
def test_the_reader_accepts_exactly_what_the_reference_accepts(
    base: bytes, changes: list[tuple[int, int]], cut: int
) -> None:
    data = mutated(base, changes, cut)
    assert ours(data) == reference_decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=MAX_COSE_BYTES + 2))
def test_random_bytes_are_read_alike(data: bytes) -> None:
    assert ours(data) == reference_decode(data)


def test_other_encodings_of_the_same_values_are_refused() -> None:
    short = protected_header("h", 1)
    assert len(short) < 24
    payload, signature = b"p" * 90, b"s" * 64
    tail = b"\xa0\x58\x5a" + payload + b"\x58\x40" + signature
    assert ours(b"\xd2\x84" + bytes([0x40 | len(short)]) + short + tail) is not None
    assert ours(b"\xd2\x84\x58" + bytes([len(short)]) + short + tail) is None  # a longer length head
    assert ours(b"\xd2\x84\x5f" + bytes([0x40 | len(short)]) + short + b"\xff" + tail) is None  # chunked
    assert ours(b"\xd2\x9f" + bytes([0x40 | len(short)]) + short + tail + b"\xff") is None  # array(*)
    assert ours(GENUINE + b"\x00") is None and ours(GENUINE[:-1]) is None


def cbor2_claims(claims: Claims) -> bytes:
    values: dict[int, Any] = {ISS: claims.issuer, IAT: claims.issued_at, CTI: claims.serial,
                              DOC_TYPE: claims.doc_type, SHA256: claims.sha256}
    if claims.expires_at is not None:
        values[EXP] = claims.expires_at
    return cbor2.dumps(values, canonical=True)


SLUG = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", fullmatch=True)
TIMES = st.one_of(st.integers(0, 23), st.integers(24, 2**8), st.integers(2**8, 2**16),
                  st.integers(2**16, 2**32), st.integers(2**32, 2**40 - 1))  # every head length


@settings(max_examples=300, deadline=None)
@given(SLUG, SLUG, TIMES, st.one_of(st.none(), st.integers(1, 2**20)))
def test_claims_are_written_as_cbor2_writes_them_canonically(
    issuer: str, doc_type: str, issued_at: int, valid_for: int | None
) -> None:
    expires_at = None if valid_for is None else issued_at + valid_for
    if expires_at is not None and expires_at >= 2**40:
        expires_at = None
    claims = Claims(issuer=issuer, doc_type=doc_type, serial=os.urandom(16), sha256=os.urandom(32),
                    issued_at=issued_at, expires_at=expires_at)
    assert claims.to_cbor() == cbor2_claims(claims)
    assert Claims.from_cbor(claims.to_cbor()) == claims


def reference_claims(data: bytes) -> Claims | None:
    """What Claims.from_cbor must accept, said with a general decoder: a map of exactly the claim
    keys, values of the exact types, valid claims, and to_cbor() gives the very bytes back."""
    if len(data) > 512:
        return None
    try:
        decoded = cbor2.loads(data)
    except Exception:
        return None
    required = {ISS, IAT, CTI, DOC_TYPE, SHA256}
    if not isinstance(decoded, dict) or not required <= decoded.keys() <= required | {EXP}:
        return None
    kinds = {ISS: str, DOC_TYPE: str, CTI: bytes, SHA256: bytes, IAT: int, EXP: int}
    if any(type(value) is not kinds[key] for key, value in decoded.items()):
        return None
    try:
        claims = Claims(issuer=decoded[ISS], doc_type=decoded[DOC_TYPE], serial=decoded[CTI],
                        sha256=decoded[SHA256], issued_at=decoded[IAT], expires_at=decoded.get(EXP))
    except MalformedToken:
        return None
    return claims if cbor2_claims(claims) == data else None


def read_claims(data: bytes) -> Claims | None:
    try:
        return Claims.from_cbor(data)
    except MalformedToken:
        return None


CLAIMS = [Claims(issuer="health", doc_type="birth-certificate", serial=os.urandom(16), sha256=os.urandom(32),
                 issued_at=1_790_000_000, expires_at=expires) for expires in (None, 1_900_000_000)]
CLAIMS.append(Claims(issuer="h" * 30, doc_type="d", serial=os.urandom(16), sha256=os.urandom(32),
                     issued_at=5, expires_at=300))  # 1-byte and 2-byte heads, 0x78 text head


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CLAIMS), st.lists(st.tuples(st.integers(0, 130), st.integers(0, 255)), max_size=3),
       st.integers(-3, 3))
def test_claims_are_read_exactly_as_the_reference_reads_them(
    claims: Claims, changes: list[tuple[int, int]], cut: int
) -> None:
    data = mutated(claims.to_cbor(), changes, cut)
    assert read_claims(data) == reference_claims(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([ISS, EXP, IAT, CTI, DOC_TYPE, SHA256, 2, -1]),
                       st.one_of(st.text(max_size=5), st.binary(max_size=33), st.integers(-2, 2**41),
                                 st.booleans(), st.none()), max_size=7))
def test_maps_of_claim_like_values_are_read_alike(values: dict[int, object]) -> None:
    for canonical in (True, False):
        data = cbor2.dumps(values, canonical=canonical)
        assert read_claims(data) == reference_claims(data)
