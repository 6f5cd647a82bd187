"""Tenant phases and the one table of transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum

from controlplane.errors import Conflict


class Phase(StrEnum):
    PENDING = "pending"  # accepted, never applied
    PROVISIONING = "provisioning"  # first apply in progress
    READY = "ready"  # converged at the latest generation
    UPDATING = "updating"  # applying a spec change or repairing drift
    FAILED = "failed"  # last attempt failed; retried with backoff
    DISABLED = "disabled"  # decommission 1: domain and projects disabled, no new tokens
    ARCHIVED = "archived"  # decommission 2: evidence and public keys kept, key verify-only
    RETAINED = "retained"  # decommission 3: retention hold until a date
    DELETING = "deleting"  # decommission 4: removing cloud resources
    DELETED = "deleted"  # nothing left in the cloud under the tenant


TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.PROVISIONING, Phase.FAILED, Phase.DISABLED}),
    Phase.PROVISIONING: frozenset({Phase.READY, Phase.FAILED, Phase.PROVISIONING}),
    Phase.READY: frozenset({Phase.UPDATING, Phase.DISABLED}),
    Phase.UPDATING: frozenset({Phase.READY, Phase.FAILED, Phase.UPDATING}),
    Phase.FAILED: frozenset({Phase.PROVISIONING, Phase.UPDATING, Phase.DISABLED}),
    Phase.DISABLED: frozenset({Phase.ARCHIVED, Phase.UPDATING}),  # UPDATING = re-enable
    Phase.ARCHIVED: frozenset({Phase.RETAINED}),
    Phase.RETAINED: frozenset({Phase.DELETING}),
    Phase.DELETING: frozenset({Phase.DELETED, Phase.DELETING}),
    Phase.DELETED: frozenset(),
}

# Phases in which the reconciler converges the tenant to its spec.
ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.PROVISIONING, Phase.READY, Phase.UPDATING, Phase.FAILED})
DECOMMISSION_ORDER = (Phase.DISABLED, Phase.ARCHIVED, Phase.RETAINED, Phase.DELETING, Phase.DELETED)


def check_transition(current: str, target: Phase) -> Phase:
    """Return `target` if the table allows current → target, else raise Conflict naming both."""
    here = Phase(current)
    if target not in TRANSITIONS[here]:
        allowed = ", ".join(sorted(p.value for p in TRANSITIONS[here])) or "nothing"
        raise Conflict(
            f"a tenant in phase {here.value!r} cannot move to {target.value!r} (allowed: {allowed})"
        )
    return target
