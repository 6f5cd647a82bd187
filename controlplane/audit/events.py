"""record_event: write one audit event inside the caller's transaction (fail closed)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import insert
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
    ACCOUNT_ROLE_CHANGE = "account:role:change"
    ACCOUNT_DISABLE = "account:disable"  # also revokes the person's sessions and the tokens they minted
    ACCOUNT_ENABLE = "account:enable"
    ACCOUNT_PASSWORD_RESET = "account:password:reset"  # noqa: S105 - an action name
    REQUEST_CREATE = "request:create"
    REQUEST_SUBMIT = "request:submit"
    REQUEST_APPROVE = "request:approve"  # an operator's approval, or the auto-approval rules'
    REQUEST_REJECT = "request:reject"
    REQUEST_WITHDRAW = "request:withdraw"
    REQUEST_APPLY = "request:apply"  # outcome success (applied) or failure (failed)
    ACCOUNT_LOCKOUT = "account:lockout"
    ACCOUNT_MFA_ENROL = "account:mfa:enrol"
    ACCOUNT_MFA_VERIFY = "account:mfa:verify"
    ACCOUNT_MFA_RECOVERY_USE = "account:mfa:recovery:use"
    ACCOUNT_MFA_RESEAL = "account:mfa:reseal"  # a legacy TOTP secret sealed again under the MFA key
    ACCOUNT_REAUTH = "account:reauth"  # password (+ TOTP) again before a sensitive action
    ACCOUNT_SESSION_END = "account:session:end"  # a person ended their own other session(s)
    API_TOKEN_CREATE = "api_token:create"  # noqa: S105 - an action name
    API_TOKEN_REVOKE = "api_token:revoke"  # noqa: S105 - an action name
    # A refused token use (wrong secret, revoked, expired); successful uses are counted per hour in
    # api_token_use_hours, not audited one by one (accounts.token_use).
    API_TOKEN_USE = "api_token:use"  # noqa: S105 - an action name
    API_TOKEN_LIST = "api_token:list"  # noqa: S105 - a sensitive read: a token listed the tokens
    ACCOUNT_INVITE = "account:invite"  # an operator invited an organisation's first admin
    ACCOUNT_INVITE_ACCEPT = "account:invite:accept"
    STAFF_CHANGE_FILE = "staff_change:file"  # a staff-account change waiting for a second operator
    STAFF_CHANGE_APPROVE = "staff_change:approve"
    STAFF_CHANGE_REJECT = "staff_change:reject"
    STAFF_CHANGE_EXPIRE = "staff_change:expire"
    ORG_ACCESS_CLOSE = "org:access:close"  # decommission: the organisation's people and tokens stopped
    AUDIT_CONSOLE_EXPORT = "audit:console:export"  # an auditor downloaded filtered events
    AUDIT_HOURS_RECOUNT = "audit:hours:recount"  # the timeline's hourly counts rebuilt from the log
    DOCUMENT_ISSUE = "document:issue"
    DOCUMENT_REVOKE = "document:revoke"
    DOCUMENT_SUPERSEDE = "document:supersede"
    DOCUMENT_IMPORT = "document:import"
    TRUST_LIST_PUBLISH = "trust_list:publish"
    KEY_CREATE = "key:create"  # a tenant's signing key, made by its first apply
    KEY_ROTATE = "key:rotate"  # a new version signs from now on; the old ones still verify
    KEY_RETIRE = "key:retire"  # verify-only from decommission on


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


def record_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Bulk callers (e.g. batch issuance): many events in one multi-row INSERT (no ORM objects), in
    the caller's transaction and failing it as record_event does. Each dict takes its keywords."""
    rows = [
        {"action": str(f["action"]), "initiator": f["initiator"], "target": f["target"],
         "outcome": f.get("outcome", "success"), "org": f.get("org", ""),
         "detail": {k: v for k, v in (f.get("detail") or {}).items() if k.lower() not in _SECRET_KEYS}}
        for f in events
    ]
    if rows:
        session.execute(insert(AuditEvent), rows)
