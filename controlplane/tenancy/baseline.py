"""The post-provision baseline: playbooks/tenant-baseline.yml through the automation backend,
each of its events stored as it happens so the console can show live progress."""

from __future__ import annotations

from controlplane.backends import Backends
from controlplane.backends.automation import RunEvent
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


def _status(event: RunEvent) -> str:
    if event.failed:
        return "failed"
    if event.event.endswith("_skipped"):
        return "skipped"
    if event.event.startswith("runner_on"):
        return "changed" if event.changed else "ok"
    return ""


def run_baseline(
    slug: str, spec: TenantSpec, *, db: Database, backends: Backends, settings: Settings, run_id: str
) -> None:
    """Run the baseline; raise PermanentError naming the failed task if it does not succeed."""
    with db.transaction() as s:
        s.add(PlaybookRun(id=run_id, tenant_slug=slug, playbook=PLAYBOOK))

    def on_event(event: RunEvent) -> None:
        if not event.event.startswith(("runner_on", "playbook_on_task_start", "playbook_on_stats")):
            return
        with db.transaction() as s:
            s.add(
                PlaybookEvent(
                    run_id=run_id,
                    counter=event.counter,
                    event=event.event,
                    task=event.task[:300],
                    host=event.host[:120],
                    status=_status(event),
                    message=event.message[:2000],
                )
            )

    extravars = {
        "tenant": slug,
        "domain": spec.domain_name,
        "projects": [spec.project_name(e.name) for e in spec.environments],
        "baseline_security_group": BASELINE_SG,
        "bastion_cidr": BASTION_CIDR,
        "cloud": settings.os_cloud,
        # a path, not a secret: the modules read credentials from the clouds.yaml it names
        "os_client_config_file": settings.clouds_yaml,
    }
    result = backends.automation.run(
        PLAYBOOK,
        extravars=extravars,
        timeout=settings.ansible_timeout,
        ident=f"{slug}-{run_id[:8]}",
        on_event=on_event,
    )
    with db.transaction() as s:
        run = s.get(PlaybookRun, run_id)
        assert run is not None
        run.status, run.rc, run.finished_at = result.status, result.rc, utcnow()
        run.stats = {host: vars(st) for host, st in result.stats.items()}
        registry.add_event(
            s,
            slug,
            "playbook",
            f"{PLAYBOOK}: {result.status} in {result.duration:.1f}s",
            run_id=run_id,
            detail={"rc": result.rc},
        )
    if not result.ok:
        failed = ", ".join(result.failed_tasks) or result.summary or result.status
        raise PermanentError(f"playbook {PLAYBOOK} {result.status}: {failed}", backend="ansible")
