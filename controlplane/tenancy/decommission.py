"""Staged decommission: disable -> archive -> retention hold -> delete, each step audited.
The signing key is made verify-only, never destroyed, so documents already issued still verify.
Disabling also closes the organisation's access (its people and tokens) with the stage change."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.orm import Session

from controlplane.audit import AuditAction, record_event
from controlplane.backends import Backends
from controlplane.backends.cloud import CloudBackend
from controlplane.backends.keys import signing_key_name, tenant_policy_name
from controlplane.errors import BackendNotFound, Conflict
from controlplane.settings import Settings
from controlplane.storage import Database, as_utc, utcnow
from controlplane.tenancy import registry
from controlplane.tenancy.addressing import release_subnets
from controlplane.tenancy.observe import KV_MARKER
from controlplane.tenancy.phases import DECOMMISSION_ORDER, Phase, check_transition
from controlplane.tenancy.services import remove_services
from controlplane.tenancy.spec import GROUP_ROLES

Progress = Callable[[str], None]
# Closes an organisation's access in the given session: (session, org, initiator) -> counts for the
# audit detail. accounts.admin.close_organisation, passed in by the caller (accounts and tenancy are
# siblings that do not import each other).
AccessCloser = Callable[[Session, str, str], Mapping[str, object]]


def _transition(
    db: Database,
    slug: str,
    target: Phase,
    *,
    initiator: str,
    detail: dict[str, object],
    key_retired: str = "",
    close_access: AccessCloser | None = None,
) -> None:
    with db.transaction() as s:
        t = registry.get_tenant(s, slug)
        t.phase = check_transition(t.phase, target).value
        if close_access is not None:  # the same transaction: never a disabled tenant with live tokens
            detail = {**detail, "access_closed": dict(close_access(s, slug, initiator))}
        registry.add_event(s, slug, "phase", f"decommission: {target.value}", detail=detail)
        record_event(
            s,
            action=f"tenant:decommission:{target.value}",
            initiator=initiator,
            target=f"tenant:{slug}",
            org=slug,
            detail=detail,
        )
        if key_retired:  # the auditors' key history: this key signs nothing from now on
            record_event(s, action=AuditAction.KEY_RETIRE, initiator=initiator, target=f"key:{key_retired}",
                         org=slug, detail={"verify_only": True})


def _projects(cloud: CloudBackend, slug: str) -> tuple[str, list[tuple[str, str]]]:
    domain = cloud.find_domain(slug)
    if domain is None:
        return "", []
    return domain.id, [(p.id, p.name) for p in cloud.list_projects(domain_id=domain.id)]


def disable(
    db: Database, backends: Backends, slug: str, *, initiator: str, close_access: AccessCloser,
    settings: Settings | None = None,
) -> None:
    """No new tokens for the tenant's users, no new signatures, its services stopped; its people
    disabled and its API tokens revoked (`close_access`, 401 from then on); the rest stays."""
    with db.transaction() as s:
        tenant = registry.get_tenant(s, slug)
        check_transition(tenant.phase, Phase.DISABLED)
        spec = registry.tenant_spec(tenant)
    if settings is not None and spec.services:
        # A shared service (e.g. verification) stops serving before its tenant's identity goes.
        remove_services(spec, db=db, backends=backends, settings=settings, run_id=f"decommission-{slug}")
    cloud, keys = backends.cloud, backends.keys
    domain_id, projects = _projects(cloud, slug)
    for project_id, _name in projects:
        cloud.update_project(project_id, enabled=False)
    if domain_id:
        cloud.update_domain(domain_id, enabled=False)
    with contextlib.suppress(BackendNotFound):
        keys.delete_approle(tenant_policy_name(slug))
    with contextlib.suppress(BackendNotFound):
        keys.make_key_verify_only(signing_key_name(slug))
    _transition(
        db,
        slug,
        Phase.DISABLED,
        initiator=initiator,
        detail={"projects_disabled": len(projects), "domain_disabled": bool(domain_id)},
        key_retired=signing_key_name(slug),
        close_access=close_access,
    )


def archive(db: Database, backends: Backends, slug: str, *, initiator: str) -> None:
    """Keep the evidence: every public key version and an inventory of what the tenant had."""
    with db.transaction() as s:
        check_transition(registry.get_tenant(s, slug).phase, Phase.ARCHIVED)
    added, versions = 0, 0
    try:
        key = backends.keys.get_signing_key(signing_key_name(slug))
        versions = len(key.public_keys)
        with db.transaction() as s:
            added = len(registry.archive_public_keys(s, slug, key).added)
    except BackendNotFound:
        pass
    _domain_id, projects = _projects(backends.cloud, slug)
    inventory = {name: backends.cloud.list_project_resources(pid).summary() for pid, name in projects}
    _transition(
        db,
        slug,
        Phase.ARCHIVED,
        initiator=initiator,
        detail={"public_key_versions": versions, "newly_archived": added, "inventory": inventory},
    )


def hold(db: Database, slug: str, *, days: int, initiator: str) -> None:
    if days < 0:
        raise Conflict("the retention period cannot be negative")
    until = utcnow() + timedelta(days=days)
    with db.transaction() as s:
        registry.get_tenant(s, slug).retention_until = until
    _transition(
        db,
        slug,
        Phase.RETAINED,
        initiator=initiator,
        detail={"retention_days": days, "until": until.isoformat()},
    )


def delete_project_contents(cloud: CloudBackend, project_id: str) -> None:
    """Everything under a project id, in dependency order, then its quotas back to defaults."""
    res = cloud.list_project_resources(project_id)
    for server in res.servers:
        cloud.delete_server(server.id)
    for volume in res.volumes:
        cloud.delete_volume(volume.id)
    for router in res.routers:
        for interface in cloud.list_router_interfaces(router.id):
            cloud.remove_router_interface(router.id, subnet_id=interface.subnet_id)
        cloud.delete_router(router.id)
    for subnet in res.subnets:
        cloud.delete_subnet(subnet.id)
    for network in res.networks:
        cloud.delete_network(network.id)
    for sg in res.security_groups:
        cloud.delete_security_group(sg.id)
    cloud.reset_compute_quotas(project_id)
    cloud.reset_network_quotas(project_id)
    cloud.reset_volume_quotas(project_id)


def delete(
    db: Database, backends: Backends, slug: str, *, initiator: str, progress: Progress | None = None
) -> dict[str, object]:
    """Remove every cloud object of the tenant (idempotent: safe to rerun after a crash)."""
    say = progress or (lambda _m: None)
    with db.transaction() as s:
        t = registry.get_tenant(s, slug)
        if t.phase == Phase.RETAINED.value:
            if t.retention_until and utcnow() < as_utc(t.retention_until):
                raise Conflict(
                    f"tenant {slug} is under retention hold until {t.retention_until:%Y-%m-%d %H:%M} UTC"
                )
            t.phase = check_transition(t.phase, Phase.DELETING).value
            record_event(
                s,
                action="tenant:decommission:deleting",
                initiator=initiator,
                target=f"tenant:{slug}",
                org=slug,
            )
        elif t.phase != Phase.DELETING.value:
            raise Conflict(
                f"tenant {slug} is {t.phase}; delete follows the retention hold "
                f"({' -> '.join(p.value for p in DECOMMISSION_ORDER)})"
            )
    cloud, keys = backends.cloud, backends.keys
    domain_id, projects = _projects(cloud, slug)
    project_ids = [pid for pid, _ in projects]
    for project_id, name in projects:
        say(f"deleting everything in project {name}")
        delete_project_contents(cloud, project_id)
        cloud.delete_project(project_id)
    if domain_id:
        for group in GROUP_ROLES:
            g = cloud.find_group(f"{slug}-{group}", domain_id=domain_id)
            if g is not None:
                cloud.delete_group(g.id)
        cloud.delete_domain(domain_id)
    # The transit key stays (verify-only since disable): documents already issued must verify.
    with contextlib.suppress(BackendNotFound):
        keys.delete_policy(tenant_policy_name(slug))
    with contextlib.suppress(BackendNotFound):
        keys.delete_approle(tenant_policy_name(slug))
    with contextlib.suppress(BackendNotFound):
        keys.delete_secret(KV_MARKER.format(slug=slug))
    leftovers = {pid: cloud.list_project_resources(pid).summary() for pid in project_ids}
    leftovers = {pid: s for pid, s in leftovers.items() if any(s.values())}
    if leftovers:
        raise Conflict(f"tenant {slug}: resources remain after delete: {leftovers}; run delete again")
    with db.transaction() as s:
        released = release_subnets(s, slug)
    detail: dict[str, object] = {
        "projects_deleted": project_ids,
        "subnets_released": released,
        "signing_key": "kept verify-only",
    }
    _transition(db, slug, Phase.DELETED, initiator=initiator, detail=detail)
    return detail


# The stage each phase moves to next; phases not listed have no decommission step to take now.
NEXT_STAGE: dict[str, Phase] = {
    Phase.PENDING.value: Phase.DISABLED,
    Phase.READY.value: Phase.DISABLED,
    Phase.FAILED.value: Phase.DISABLED,
    Phase.DISABLED.value: Phase.ARCHIVED,
    Phase.ARCHIVED.value: Phase.RETAINED,
    Phase.RETAINED.value: Phase.DELETED,
    Phase.DELETING.value: Phase.DELETED,
}


def advance(
    db: Database,
    backends: Backends,
    slug: str,
    *,
    initiator: str,
    retention_days: int,
    settings: Settings,
    close_access: AccessCloser,
    progress: Progress | None = None,
) -> Phase:
    """Take the tenant's next decommission stage (the one step shared by the CLI and the console)."""
    with db.transaction() as s:
        phase = registry.get_tenant(s, slug).phase
    stage = NEXT_STAGE.get(phase)
    if stage is None:
        raise Conflict(f"tenant {slug} is {phase}: no decommission stage follows")
    if stage is Phase.DISABLED:
        disable(db, backends, slug, initiator=initiator, settings=settings, close_access=close_access)
    elif stage is Phase.ARCHIVED:
        archive(db, backends, slug, initiator=initiator)
    elif stage is Phase.RETAINED:
        hold(db, slug, days=retention_days, initiator=initiator)
    else:
        delete(db, backends, slug, initiator=initiator, progress=progress)
    return stage
