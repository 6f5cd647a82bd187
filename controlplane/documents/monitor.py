"""A ministry's monitor of its own key, like a Certificate Transparency monitor: check every page of
GET /api/v1/documents/issued against the pinned audit key alone, trusting nothing else the platform says.

For each document in the registry: the token it serves must be what was signed (the SHA-256 of its
Sig_structure, its serial and key), that entry must be in its batch's Merkle root, the root in an
audit event of this organisation naming who signed, and that event in the log under a checkpoint
signed by a pinned audit key. A document with no log entry is a signature made unseen: a forgery
by whoever can write the registry. Pure functions: the CLI fetches, tests call them directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controlplane.audit.checkpoints import verify_ed25519
from controlplane.documents.claims import Claims
from controlplane.documents.cose import decode_sign1, sig_structure
from controlplane.documents.errors import MalformedToken
from controlplane.documents.signature_log import ROOT_FIELD, Entry, entry_in_batch, signed_sha256
from controlplane.documents.tokens import decode_token
from controlplane.storage import as_utc
from controlplane.tlog import merkle
from controlplane.tlog.note import NoteError, parse_note

SIGNING_ACTIONS = frozenset({"document:issue", "document:import"})


@dataclass
class MonitorReport:
    """What the monitor found: documents proved, still pending, and every problem by serial."""

    org: str = ""
    checked: int = 0
    included: int = 0
    pending: int = 0
    unlogged: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    signers: Counter[str] = field(default_factory=Counter)
    tree_size: int = 0

    @property
    def ok(self) -> bool:
        return not self.unlogged and not self.faults


@dataclass(frozen=True)
class VerifiedCheckpoint:
    tree_size: int
    root_hash: bytes


def verify_checkpoint(body: Mapping[str, Any] | None, pinned_keys: Sequence[bytes]) -> VerifiedCheckpoint:
    """The (size, root) of a checkpoint whose note a pinned audit key signed; ValueError otherwise.

    Takes the checkpoint as GET /api/v1/audit/checkpoint gives it: the signed `note` text with the
    signature beside it (`signature.value`), or a C2SP signed note whose signature lines follow the
    text after a blank line ("\u2014 <name> <base64(key hash[4] || signature)>")."""
    if not body:
        raise ValueError("the answer has no signed checkpoint")
    text, signatures = _note_and_signatures(body)
    note = text.encode("utf-8")
    if not any(verify_ed25519(key, sig, note) for key in pinned_keys for sig in signatures):
        raise ValueError("the checkpoint is not signed by a pinned audit key")
    lines = text.split("\n")
    size, root = int(lines[1]), _unb64(lines[2])
    if size != int(body["tree_size"]) or root != _unb64(body["root_hash"]):
        raise ValueError("the checkpoint's fields differ from the note that was signed")
    return VerifiedCheckpoint(size, root)


def check_page(
    page: Mapping[str, Any],
    pinned_keys: Sequence[bytes],
    report: MonitorReport,
    *,
    now: datetime,
    max_pending: timedelta,
) -> None:
    """Check one page of the listing into `report`."""
    org = str(page.get("org", ""))
    if report.org and org != report.org:
        report.faults.append(f"the listing is of {org!r}, not {report.org!r}")
        return
    report.org = org
    checkpoint: VerifiedCheckpoint | None = None
    try:
        checkpoint = verify_checkpoint(page.get("checkpoint"), pinned_keys)
        report.tree_size = max(report.tree_size, checkpoint.tree_size)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        if page.get("checkpoint") is not None:
            report.faults.append(f"checkpoint: {exc}")
    events = {k: _event(v, org, checkpoint) for k, v in (page.get("events") or {}).items()}
    for doc in page.get("documents") or []:
        report.checked += 1
        serial = str(doc.get("serial"))
        try:
            problem = _check_document(doc, events, org, now=now, max_pending=max_pending, report=report)
        except (ValueError, KeyError, TypeError, MalformedToken) as exc:
            problem = f"unreadable entry ({exc})"
        if problem == "unlogged":
            report.unlogged.append(serial)
        elif problem:
            report.faults.append(f"{serial}: {problem}")


@dataclass(frozen=True)
class _Event:
    record: dict[str, Any]
    proved: bool  # in the log under the verified checkpoint
    fault: str
    pending_since: datetime | None


def _event(body: Mapping[str, Any], org: str, checkpoint: VerifiedCheckpoint | None) -> _Event:
    try:
        raw = _unb64(body["leaf_input"])
        record = json.loads(raw)
        content = record["attachments"][0]["content"]
        if content["org"] != org or record["name"] not in SIGNING_ACTIONS:
            return _Event(record, False, "the log event is not a signing event of this organisation", None)
        if body.get("status") != "included":
            return _Event(record, False, "", as_utc(datetime.fromisoformat(body["pending_since"])))
        if checkpoint is None:
            return _Event(record, False, "no verified checkpoint to prove the event against", None)
        if int(body["tree_size"]) != checkpoint.tree_size:
            return _Event(record, False, "the event is proved against another tree size", None)
        path = [_unb64(h) for h in body["inclusion_path"]]
        if not merkle.verify_inclusion(merkle.hash_leaf(raw), int(body["leaf_index"]),
                                       checkpoint.tree_size, path, checkpoint.root_hash):
            return _Event(record, False, "the event's inclusion proof does not verify", None)
        return _Event(record, True, "", None)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return _Event({}, False, f"unreadable log event ({exc})", None)


def _check_document(
    doc: Mapping[str, Any], events: Mapping[str, _Event], org: str, *,
    now: datetime, max_pending: timedelta, report: MonitorReport,
) -> str:
    sig = doc.get("signature")
    if not sig:
        return "unlogged"
    event = events.get(str(sig["event_id"]))
    if event is None:
        return "unlogged"
    sign1 = decode_sign1(decode_token(str(doc["token"])))
    claims = Claims.from_cbor(sign1.payload)
    entry = Entry(str(doc["serial"]), signed_sha256(sig_structure(sign1.protected_raw, sign1.payload)),
                  sign1.key_name, sign1.key_version)
    if claims.serial.hex() != entry.serial or claims.issuer != org:
        return "the registry's token is for another serial or issuer"
    if (entry.signed_sha256, entry.key_name, entry.key_version) != (
            sig["signed_sha256"], sig["key_name"], int(sig["key_version"])):
        return "the registry's token is not what the log says was signed"
    if event.fault:
        return event.fault
    detail = event.record["attachments"][0]["content"]["detail"]
    root = bytes.fromhex(str(detail[ROOT_FIELD]))
    path = [_unb64(h) for h in sig["batch_path"]]
    if not entry_in_batch(entry, int(sig["batch_index"]), int(sig["batch_size"]), path, root):
        return "the signature is not in the batch its log event committed to"
    who = event.record["initiator"]["name"]
    if who != sig["signed_by"] or detail.get("person") != sig["person"]:
        return f"the listing says {sig['signed_by']} signed it, the log says {who}"
    report.signers[f"{who} ({detail.get('person')})"] += 1
    if event.proved:
        report.included += 1
        return ""
    report.pending += 1
    if event.pending_since is not None and now - event.pending_since > max_pending:
        return f"still not in the log after {now - event.pending_since} (pending since {event.pending_since})"
    return ""


def _note_and_signatures(body: Mapping[str, Any]) -> tuple[str, list[bytes]]:
    note = str(body["note"])
    signatures: list[bytes] = []
    if "\n\n\u2014 " in note:  # a C2SP signed note: text, blank line, signature lines
        try:
            parsed = parse_note(note)
        except NoteError as exc:
            raise ValueError(str(exc)) from None
        note = parsed.text
        signatures += [sig.signature for sig in parsed.signatures]
    given = body.get("signature")
    if isinstance(given, Mapping) and "value" in given:
        signatures.append(_unb64(given["value"]))
    return note, signatures


def _unb64(text: object) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
