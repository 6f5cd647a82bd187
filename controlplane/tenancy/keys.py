"""Rotating a tenant's document-signing key: Vault first, then the archive and the audit in one step."""

from __future__ import annotations

import re
from dataclasses import dataclass

from controlplane.audit import AuditAction, record_event
from controlplane.backends.keys import KeyBackend, signing_key_name
from controlplane.errors import Conflict, InvalidInput
from controlplane.storage import Database
from controlplane.tenancy import registry
from controlplane.tenancy.phases import DECOMMISSION_ORDER, Phase

REASON_MIN, REASON_MAX = 3, 500
# The same characters the API's OpenAPI document refuses (C0 controls but tab and newlines, DEL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Rotation:
    slug: str
    key: str
    from_version: int
    to_version: int


def check_reason(reason: object) -> str:
    """The operator's reason as given: a string of 3 to 500 characters that says something."""
    if not isinstance(reason, str):
        raise InvalidInput("reason: say why the key is rotated, as a string")
    if not REASON_MIN <= len(reason) <= REASON_MAX or not reason.strip():
        raise InvalidInput(f"reason: say why the key is rotated, in {REASON_MIN} to {REASON_MAX} characters")
    if _CONTROL.search(reason):
        raise InvalidInput("reason: control characters are not allowed")
    return reason


def rotate_signing_key(
    database: Database, keys: KeyBackend, org: str, *, initiator: str, reason: str
) -> Rotation:
    """Make a new version of the tenant's signing key the one documents are signed with.

    Only a ready tenant: a decommissioning one's key is verify-only, and one not yet applied may
    have no key. Documents already issued keep verifying: every version's public key stays archived.
    """
    reason = check_reason(reason)
    with database.transaction() as s:
        phase = Phase(registry.get_tenant(s, org).phase)
    if phase in DECOMMISSION_ORDER:
        raise Conflict(f"tenant {org} is being decommissioned (phase {phase.value}): its signing key "
                       "signs nothing any more, so it is not rotated; nothing was changed")
    if phase is not Phase.READY:
        raise Conflict(f"tenant {org} is not ready (phase {phase.value}): its signing key is rotated "
                       "only once the tenant is applied; nothing was changed",
                       hint="apply it first (controlplane tenants apply), or let the reconciler finish")
    name = signing_key_name(org)
    # Vault outside any transaction (a slow Vault must not hold database locks).
    key = keys.rotate_signing_key(name)
    rotation = Rotation(org, name, key.latest_version - 1, key.latest_version)
    with database.transaction() as s:
        registry.archive_public_keys(s, org, key)
        detail = {"key": name, "from_version": rotation.from_version, "to_version": rotation.to_version,
                  "reason": reason}
        registry.add_event(s, org, "action", f"signing key rotated to version {rotation.to_version}",
                           detail=detail)
        record_event(s, action=AuditAction.KEY_ROTATE, initiator=initiator, target=f"key:{name}", org=org,
                     detail=detail)
    return rotation
