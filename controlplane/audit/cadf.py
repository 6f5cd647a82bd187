"""CADF rendering of audit events and the canonical leaf input the Merkle log hashes.

The leaf input of an event is its CADF record (DMTF DSP0262, as pycadf builds it) serialised
canonically: JSON, keys sorted, no whitespace, UTF-8, no NaN. Every stored field is in it exactly:

  id (CADF)      event_uuid                 eventTime   occurred_at, UTC, microseconds
  name           action (our vocabulary)    action      its CADF taxonomy term
  outcome        outcome                    initiator / target / observer  {name: the stored
  attachments[0] "record": {id: the row id, org, detail}     string, id: UUIDv5 of it, typeURI}

so changing any field of a row changes its leaf input, hence its leaf hash and the tree root.
`cadf_record` is plain Python (the sequencer and `audit verify` run it per event); `to_cadf`
builds the same record through pycadf, which validates it, for export (tests keep them equal).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controlplane.audit.models import AuditEvent

CADF_EVENT_TYPE_URI = "http://schemas.dmtf.org/cloud/audit/1.0/event"
RECORD_TYPE_URI = "controlplane/audit/record"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+0000"  # pycadf's, always in UTC
# Resource ids are UUIDv5 of the stored name: valid CADF identifiers, the same for the same actor.
RESOURCE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:controlplane:audit:resource")
CADF_OUTCOMES = frozenset({"success", "failure", "pending", "unknown"})

# "<kind>:<id>" -> CADF resource taxonomy
_RESOURCE_TYPES = {
    "user": "data/security/account/user",
    "token": "data/security/credential",
    "api_token": "data/security/credential",
    "tenant": "data/security/project",
    "org": "data/security/domain",
    "key": "data/security/key",
    "request": "data/workload/task",
    "document": "data/file",
    "audit": "data/file/log",
    "system": "service",
    "cli": "service",
    "worker": "service",
    "ip": "network/node/host",
}
# last segment of our action name -> CADF action taxonomy
_ACTIONS = {
    "create": "create",
    "bootstrap": "create",
    "enrol": "create",
    "issue": "create",
    "import": "create",
    "register": "create",
    "login": "authenticate/login",
    "verify": "authenticate",
    "use": "authenticate",
    "logout": "authenticate/logout",
    "revoke": "revoke",
    "delete": "delete",
    "destroy": "delete",
    "purge": "delete",
    "approve": "allow",
    "reject": "deny",
    "export": "read",
    "read": "read",
    "lockout": "disable",
    "disable": "disable",
    "enable": "enable",
    "apply": "configure",
}


def cadf_action(action: str) -> str:
    return _ACTIONS.get(action.rsplit(":", 1)[-1], "update")


def resource_type(name: str) -> str:
    kind, sep, _ = name.partition(":")
    return _RESOURCE_TYPES.get(kind, "unknown") if sep else "unknown"


@functools.lru_cache(maxsize=65536)
def resource_id(name: str) -> str:
    """The CADF id of an initiator, target or observer (the same few recur: worth caching)."""
    return str(uuid.uuid5(RESOURCE_NAMESPACE, name))


def _resource(name: str, type_uri: str | None = None) -> dict[str, str]:
    return {
        "id": resource_id(name),
        "name": name,
        "typeURI": type_uri or resource_type(name),
    }


def format_time(value: datetime) -> str:
    # SQLite hands back naive datetimes; they are UTC.
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(TIME_FORMAT)


def cadf_record(
    *,
    row_id: int,
    event_uuid: str,
    occurred_at: datetime,
    action: str,
    outcome: str,
    initiator: str,
    target: str,
    observer: str,
    org: str,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The CADF record of one event, as a plain dict (see the module docstring)."""
    content: dict[str, Any] = {"id": row_id, "org": org, "detail": dict(detail or {})}
    if outcome not in CADF_OUTCOMES:
        content["outcome"] = outcome  # kept exactly; CADF gets "unknown"
    return {
        "typeURI": CADF_EVENT_TYPE_URI,
        "eventType": "activity",
        "id": event_uuid,
        "eventTime": format_time(occurred_at),
        "action": cadf_action(action),
        "name": action,
        "outcome": outcome if outcome in CADF_OUTCOMES else "unknown",
        "initiator": _resource(initiator),
        "target": _resource(target),
        "observer": _resource(observer, "service/security"),
        "attachments": [{"typeURI": RECORD_TYPE_URI, "name": "record", "content": content}],
    }


def record_of_row(row: Sequence[Any]) -> dict[str, Any]:
    """`cadf_record` of a row (id, event_uuid, occurred_at, action, outcome, initiator, target,
    observer, org, detail), as the sequencer and exporter select them."""
    rid, uid, at, action, outcome, initiator, target, observer, org, detail = row[:10]
    return cadf_record(
        row_id=rid,
        event_uuid=uid,
        occurred_at=at,
        action=action,
        outcome=outcome,
        initiator=initiator,
        target=target,
        observer=observer,
        org=org,
        detail=detail,
    )


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_of(event: AuditEvent) -> dict[str, Any]:
    return cadf_record(
        row_id=event.id,
        event_uuid=event.event_uuid,
        occurred_at=event.occurred_at,
        action=event.action,
        outcome=event.outcome,
        initiator=event.initiator,
        target=event.target,
        observer=event.observer,
        org=event.org,
        detail=event.detail,
    )


def leaf_input(event: AuditEvent) -> bytes:
    """The bytes the Merkle log hashes for `event` (RFC 9162 leaf input)."""
    return canonical_json(record_of(event))


def to_cadf(event: AuditEvent) -> dict[str, Any]:
    """The event as a validated pycadf Event, rendered as a dict (equal to `record_of(event)`)."""
    from pycadf import attachment, resource  # type: ignore[import-untyped]
    from pycadf import event as cadf_event

    plain = record_of(event)

    def res(d: dict[str, str]) -> resource.Resource:
        return resource.Resource(id=d["id"], typeURI=d["typeURI"], name=d["name"])

    built = cadf_event.Event(
        eventType=plain["eventType"],
        id=plain["id"],
        eventTime=plain["eventTime"],
        action=plain["action"],
        outcome=plain["outcome"],
        initiator=res(plain["initiator"]),
        target=res(plain["target"]),
        observer=res(plain["observer"]),
        name=plain["name"],
    )
    record = plain["attachments"][0]
    built.add_attachment(
        attachment.Attachment(typeURI=record["typeURI"], content=record["content"], name=record["name"])
    )
    if not built.is_valid():
        raise ValueError(f"audit event {event.id} is not a valid CADF event")
    return dict(built.as_dict())
