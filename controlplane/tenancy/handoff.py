"""Changes the console asks for and only the worker can make (issue 12: the console holds neither
the cloud-admin credential nor key management): queued with an audit event in one transaction,
made by the worker after its next pass under the name of the person who asked."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from controlplane.audit import record_event
from controlplane.backends import Backends
from controlplane.errors import Conflict, ControlPlaneError, InvalidInput
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy import decommission, registry
from controlplane.tenancy.keys import check_reason, rotate_signing_key
from controlplane.tenancy.models import WorkerTask

log = logging.getLogger(__name__)

ROTATE_KEY = "key:rotate"
ADVANCE_DECOMMISSION = "decommission:advance"
KINDS = (ROTATE_KEY, ADVANCE_DECOMMISSION)
BATCH = 20  # tasks per pass: a burst of requests cannot starve reconciliation


def queue_task(db: Database, kind: str, slug: str, *, initiator: str, detail: dict[str, Any]) -> int:
    """Queue one change for the worker; one pending task per tenant and kind. Its id."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown task {kind!r}")
    if kind == ROTATE_KEY:
        detail = {"reason": check_reason(detail.get("reason"))}
    with db.transaction() as s:
        registry.get_tenant(s, slug)  # NotFound for an unknown tenant, before anything is written
        pending = s.scalar(select(WorkerTask.id).where(
            WorkerTask.kind == kind, WorkerTask.tenant_slug == slug, WorkerTask.done_at.is_(None)))
        if pending is not None:
            raise Conflict(f"{slug}: {kind} is already queued for the worker (task {pending})")
        task = WorkerTask(kind=kind, tenant_slug=slug, detail=detail, requested_by=initiator, outcome="")
        s.add(task)
        s.flush()
        registry.add_event(s, slug, "task", f"{kind} requested by {initiator} (task {task.id})")
        record_event(s, action=f"{kind}:request", initiator=initiator, target=f"tenant:{slug}", org=slug,
                     detail={"task": task.id, **detail})
        return task.id


def run_tasks(db: Database, backends: Backends, settings: Settings, *,
              close_access: decommission.AccessCloser) -> int:
    """The worker's hook: make the queued changes, oldest first; each records its own audit event
    under the requester's name. A refusal (e.g. the tenant is no longer ready) is kept on the task.
    `close_access` (accounts.admin.close_organisation) ends an organisation's people's and tokens'
    access in the transaction of its `disabled` stage."""
    with db.transaction() as s:
        tasks = [(t.id, t.kind, t.tenant_slug, dict(t.detail), t.requested_by) for t in s.scalars(
            select(WorkerTask).where(WorkerTask.done_at.is_(None)).order_by(WorkerTask.id).limit(BATCH))]
    for task_id, kind, slug, detail, initiator in tasks:
        outcome, error = "done", ""
        try:
            if kind == ROTATE_KEY:
                rotate_signing_key(db, backends.keys, slug, initiator=initiator, reason=detail["reason"])
            else:
                decommission.advance(db, backends, slug, initiator=initiator,
                                     retention_days=int(detail.get("retention_days", 0)), settings=settings,
                                     close_access=close_access)
        except ControlPlaneError as exc:
            outcome, error = "failed", exc.message
            log.warning("task %d (%s of %s) failed: %s", task_id, kind, slug, exc.message)
        with db.transaction() as s:
            task = s.get(WorkerTask, task_id)
            if task is not None:
                task.done_at, task.outcome, task.error = utcnow(), outcome, error[:2000]
                registry.add_event(s, slug, "task", f"{kind} (task {task_id}) {outcome}"
                                   + (f": {error}" if error else ""))
    return len(tasks)
