"""The post-provision playbooks of a tenant (the baseline, then its services' deploys) through the
automation backend, each of their events stored as it happens so the console can show live progress."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.backends import Backends
from controlplane.backends.automation import RunEvent, RunResult
from controlplane.errors import PermanentError
from controlplane.settings import Settings
from controlplane.storage import Database, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.models import PlaybookEvent, PlaybookRun
from controlplane.tenancy.observed import BASELINE_SG
from controlplane.tenancy.spec import TenantSpec

PLAYBOOK = "tenant-baseline.yml"
# Where operators reach tenant servers from: the data center's bastion network.
BASTION_CIDR = "192.0.2.0/28"


@dataclass(frozen=True)
class PlaybookJob:
    """One playbook to run for a tenant, with its extravars."""

    playbook: str
    extravars: Mapping[str, Any] = field(default_factory=dict)
    templates: tuple[str, ...] = ()  # files it reads, relative to the playbooks directory
    # What else decides the outcome beyond those files and the extravars (e.g. a code release).
    inputs: str = ""
    # Database work the playbook's outcome relies on, run just before it (e.g. the verification
    # service's own database role): idempotent, its own transaction, no backend call.
    prepare: Callable[[Database], object] | None = field(default=None, compare=False)

    def digest(self, playbooks_dir: str) -> str:
        """Changes when the playbook, its templates, its extravars or its other inputs change."""
        h = hashlib.sha256()
        for name in (self.playbook, *self.templates):
            path = Path(playbooks_dir) / name
            h.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
        # the hash only: extravars may hold a database password
        h.update(json.dumps(self.extravars, sort_keys=True, default=str).encode())
        h.update(self.inputs.encode())
        return h.hexdigest()


def playbooks_digest(spec: TenantSpec, jobs: list[PlaybookJob], settings: Settings) -> str:
    """The tenant's post-provision state: rerun every job when the spec or any job changes."""
    h = hashlib.sha256(spec.digest().encode())
    for job in jobs:
        h.update(job.digest(settings.playbooks_dir).encode())
    return h.hexdigest()


def baseline_job(spec: TenantSpec, settings: Settings) -> PlaybookJob:
    return PlaybookJob(
        PLAYBOOK,
        {
            "tenant": spec.slug,
            "domain": spec.domain_name,
            "projects": [spec.project_name(e.name) for e in spec.environments],
            "baseline_security_group": BASELINE_SG,
            "bastion_cidr": BASTION_CIDR,
            "cloud": settings.os_cloud,
            # a path, not a secret: the modules read credentials from the clouds.yaml it names
            "os_client_config_file": settings.clouds_yaml,
        },
    )


def _status(event: RunEvent) -> str:
    if event.failed:
        return "failed"
    if event.event.endswith("_skipped"):
        return "skipped"
    if event.event.startswith("runner_on"):
        return "changed" if event.changed else "ok"
    return ""


def run_playbook(
    slug: str,
    job: PlaybookJob,
    *,
    db: Database,
    backends: Backends,
    settings: Settings,
    run_id: str,
    playbook_run_id: str | None = None,
) -> RunResult:
    """Run one job, storing the run and its events; raise PermanentError naming the failed task if
    it does not succeed. `run_id` is the reconcile pass's; `playbook_run_id` (default: run_id) the
    stored run's, distinct when one pass runs several playbooks."""
    stored_id = playbook_run_id or run_id
    if job.prepare is not None and job.extravars.get("state", "present") == "present":
        job.prepare(db)
    with db.transaction() as s:
        s.add(PlaybookRun(id=stored_id, tenant_slug=slug, playbook=job.playbook))

    def on_event(event: RunEvent) -> None:
        if not event.event.startswith(("runner_on", "playbook_on_task_start", "playbook_on_stats")):
            return
        with db.transaction() as s:
            s.add(
                PlaybookEvent(
                    run_id=stored_id,
                    counter=event.counter,
                    event=event.event,
                    task=event.task[:300],
                    host=event.host[:120],
                    status=_status(event),
                    message=event.message[:2000],
                )
            )

    result = backends.automation.run(
        job.playbook,
        extravars=job.extravars,
        timeout=settings.ansible_timeout,
        ident=f"{slug}-{Path(job.playbook).stem[:40]}-{stored_id[:8]}",
        on_event=on_event,
    )
    with db.transaction() as s:
        run = s.get(PlaybookRun, stored_id)
        assert run is not None
        run.status, run.rc, run.finished_at = result.status, result.rc, utcnow()
        run.stats = {host: vars(st) for host, st in result.stats.items()}
        registry.add_event(
            s,
            slug,
            "playbook",
            f"{job.playbook}: {result.status} in {result.duration:.1f}s",
            run_id=run_id,
            detail={"rc": result.rc, "playbook_run": stored_id},
        )
    if not result.ok:
        failed = ", ".join(result.failed_tasks) or result.summary or result.status
        raise PermanentError(f"playbook {job.playbook} {result.status}: {failed}", backend="ansible")
    return result

