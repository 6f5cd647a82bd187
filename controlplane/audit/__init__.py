"""Audit: every state change is recorded as an event in the same transaction as the change."""

from controlplane.audit.events import AuditAction, record_event

__all__ = ["AuditAction", "record_event"]
