"""CADF records and leaf inputs: pycadf agrees with the plain record, and any edit of any stored
field changes the leaf input (so the leaf hash, so the tree root)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.audit.cadf import cadf_action, leaf_input, record_of, resource_type, to_cadf
from controlplane.audit.models import AuditEvent

BASE: dict[str, Any] = {
    "id": 41,
    "event_uuid": "0b8a4c52-4a43-4e8e-9a57-1f0c1f7d2a10",
    "occurred_at": datetime(2026, 11, 28, 19, 0, 0, 123456, tzinfo=UTC),
    "action": "request:approve",
    "outcome": "success",
    "initiator": "user:amal",
    "target": "request:7",
    "observer": "controlplane",
    "org": "health",
    "detail": {"approvals": 2, "comment": "ok"},
}
TEXT = st.text(min_size=1, max_size=20)
EDITS = {
    "id": st.integers(min_value=1, max_value=2**31),
    "event_uuid": st.uuids().map(str),
    "occurred_at": st.integers(min_value=1, max_value=10**9).map(
        lambda us: BASE["occurred_at"] + timedelta(microseconds=us)
    ),
    "action": TEXT,
    "outcome": st.sampled_from(["failure", "pending", "unknown", "weird"]),
    "initiator": TEXT,
    "target": TEXT,
    "observer": TEXT,
    "org": TEXT,
    "detail": st.dictionaries(TEXT, st.integers() | TEXT, max_size=3),
}


def event(**changes: Any) -> AuditEvent:
    return AuditEvent(**{**BASE, **changes})


def test_the_record_is_valid_cadf_and_pycadf_renders_it_identically() -> None:
    e = event()
    record = record_of(e)
    assert to_cadf(e) == record
    assert record["action"] == "allow" and record["name"] == "request:approve"
    assert record["initiator"]["typeURI"] == "data/security/account/user"
    assert record["eventTime"] == "2026-11-28T19:00:00.123456+0000"
    assert json.loads(leaf_input(e)) == record


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_edit_of_any_field_changes_the_leaf_input(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(EDITS)))
    value = data.draw(EDITS[name])
    if value == BASE[name]:
        return
    assert leaf_input(event(**{name: value})) != leaf_input(event()), name


def test_naive_times_are_utc_and_mappings_have_defaults() -> None:
    naive = BASE["occurred_at"].replace(tzinfo=None)
    assert leaf_input(event(occurred_at=naive)) == leaf_input(event())
    assert cadf_action("account:login") == "authenticate/login"
    assert cadf_action("tenant:quota:update") == "update"
    assert resource_type("tenant:health") == "data/security/project"
    assert resource_type("no kind") == "unknown"
