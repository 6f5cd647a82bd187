"""Request states, the steps that move between them, and the one table of allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from controlplane.errors import Conflict


class State(StrEnum):
    DRAFT = "draft"  # being written by the org admin; nobody else acts on it
    SUBMITTED = "submitted"  # waiting for operator approval (some approvals may be in)
    APPROVED = "approved"  # stored as desired state; the reconciler is applying it
    REJECTED = "rejected"
    APPLIED = "applied"  # the tenant converged at (or past) the request's generation
    FAILED = "failed"  # the reconciler refused or permanently failed that generation
    WITHDRAWN = "withdrawn"


class Step(StrEnum):
    CREATED = "created"
    SUBMITTED = "submitted"
    APPROVED = "approved"  # one operator's approval (two may be needed)
    AUTO_APPROVED = "auto-approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class Kind(StrEnum):
    QUOTA_CHANGE = "quota_change"
    NEW_ENVIRONMENT = "new_environment"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.SUBMITTED, State.WITHDRAWN}),
    State.SUBMITTED: frozenset({State.APPROVED, State.REJECTED, State.WITHDRAWN}),
    State.APPROVED: frozenset({State.APPLIED, State.FAILED}),
    State.REJECTED: frozenset(),
    State.APPLIED: frozenset(),
    State.FAILED: frozenset(),
    State.WITHDRAWN: frozenset(),
}
OPEN_STATES = frozenset({State.DRAFT, State.SUBMITTED, State.APPROVED})


def check_transition(current: str, target: State) -> State:
    """Return `target` if the table allows current → target, else raise Conflict naming both."""
    here = State(current)
    if target not in TRANSITIONS[here]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[here])) or "nothing (it is final)"
        raise Conflict(f"a request that is {here.value} cannot become {target.value} (allowed: {allowed})")
    return target
