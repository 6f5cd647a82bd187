"""Loading a trust list (signed here with a local root key): signature, format and freshness checks."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.documents.errors import TrustListInvalid
from controlplane.documents.trustlist import canonical_json, load_trust_list

ROOT = Ed25519PrivateKey.generate()
ROOT_PUBLIC = ROOT.public_key().public_bytes_raw()
ORG_KEY = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": 1, "issued_at": "2026-11-28T11:00:00Z", "next_update": "2026-11-29T11:00:00Z",
        "issuers": {"health": {"name": "وزارة الصحة", "keys": [
            {"kid": "health#1", "public_key": b64url(ORG_KEY), "archived_at": "2026-01-01T00:00:00Z"}]}},
        "revoked": [{"issuer": "health", "serial": "ab" * 16, "status": "revoked", "reason": "lost",
                     "at": "2026-11-01T00:00:00Z", "superseded_by": None}],
    }
    body.update(changes)
    return body


def signed(body: dict[str, Any], key: Ed25519PrivateKey = ROOT) -> dict[str, Any]:
    return {"payload": body, "signature": b64url(key.sign(canonical_json(body))), "kid": "cp_trust_root#1"}


def test_loads_a_good_list_from_bytes_text_or_dict() -> None:
    data = signed(payload())
    for form in (data, json.dumps(data), json.dumps(data, ensure_ascii=False).encode()):
        trust = load_trust_list(form, root_public_key=ROOT_PUBLIC, now=NOW)
        assert set(trust.keys) == {("health", 1)}
        assert trust.names == {"health": "وزارة الصحة"}
        assert trust.revoked["ab" * 16]["reason"] == "lost"


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()


@pytest.mark.parametrize("change", [
    lambda d: d["payload"]["revoked"].clear(),
    lambda d: d["payload"].update(next_update="2099-01-01T00:00:00Z"),
    lambda d: d["payload"]["issuers"]["health"]["keys"][0].update(public_key=b64url(bytes(32))),
    lambda d: d.update(signature=b64url(bytes(64))),
    lambda d: d.update(signature="!!"),
    lambda d: d.pop("signature"),
])
def test_any_change_breaks_the_signature(change: Any) -> None:
    data = signed(payload())
    change(data)
    with pytest.raises(TrustListInvalid, match="signature does not verify"):
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW)


def test_another_root_key_is_refused() -> None:
    with pytest.raises(TrustListInvalid, match="signature"):
        load_trust_list(signed(payload(), Ed25519PrivateKey.generate()), root_public_key=ROOT_PUBLIC, now=NOW)


def test_stale_and_future_lists_are_refused_with_a_reason() -> None:
    data = signed(payload())
    with pytest.raises(TrustListInvalid, match="stale: it was valid until 2026-11-29T11:00:00Z"):
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW + timedelta(days=2))
    with pytest.raises(TrustListInvalid, match="clock") as caught:
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW - timedelta(days=1))
    assert caught.value.hint == "check this computer's clock"


@pytest.mark.parametrize("body", [
    payload(version=2), payload(issuers=[]), payload(issued_at="soon"), payload(revoked=None),
    {"version": 1},
])
def test_signed_but_malformed_payloads_are_refused_not_crashed(body: dict[str, Any]) -> None:
    with pytest.raises(TrustListInvalid, match="not in format 1"):
        load_trust_list(signed(body), root_public_key=ROOT_PUBLIC, now=NOW)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(JSON, st.booleans())
def test_random_documents_raise_only_trust_list_invalid(body: Any, sign_it: bool) -> None:
    data = signed(body) if sign_it and isinstance(body, dict) else {"payload": body, "signature": "AA"}
    with pytest.raises(TrustListInvalid):
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_trust_list_invalid(data: bytes) -> None:
    with pytest.raises(TrustListInvalid):
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW)


@pytest.mark.parametrize("data", [
    b"[" * 100_000, {"payload": {"x": b"bytes"}, "signature": "AA"}, b"\xff\xfe",
])
def test_hostile_inputs_are_refused_cleanly(data: Any) -> None:
    with pytest.raises(TrustListInvalid):
        load_trust_list(data, root_public_key=ROOT_PUBLIC, now=NOW)
