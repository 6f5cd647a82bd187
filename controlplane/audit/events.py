"""record_event: write one audit event inside the caller's transaction (fail closed)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from controlplane.audit.models import AuditEvent

# Keys never stored in an event's detail, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "token", "secret", "secret_id", "otp", "totp"})


class AuditAction(StrEnum):
    """One vocabulary for audit actions and policy rules: `<subject>:<verb>` or `<subject>:<thing>:<verb>`."""

    ACCOUNT_CREATE = "account:create"
    ACCOUNT_BOOTSTRAP = "account:bootstrap"
    ACCOUNT_LOGIN = "account:login"
    ACCOUNT_LOGOUT = "account:logout"
    ACCOUNT_PASSWORD_CHANGE = "account:password:change"  # noqa: S105 - an action name


def record_event(
    session: Session,
    *,
    action: AuditAction | str,
    initiator: str,
    target: str,
    outcome: str = "success",
    org: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to `session`; it commits or rolls back together with the change it describes."""
    clean = {k: v for k, v in (detail or {}).items() if k.lower() not in _SECRET_KEYS}
    event = AuditEvent(
        action=str(action), initiator=initiator, target=target, outcome=outcome, org=org,
        detail=clean,
    )
    session.add(event)
    # Flush now so a failure to write the event fails the caller's action, not a later commit.
    session.flush()
    return event
