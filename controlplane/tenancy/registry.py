"""The tenant registry in the database: accepted specs, their generations, events and resources."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from controlplane.audit import record_event
from controlplane.backends.keys import SigningKey
from controlplane.errors import Conflict, NotFound
from controlplane.storage import utcnow
from controlplane.tenancy.models import SigningPublicKey, Tenant, TenantEvent, TenantResource
from controlplane.tenancy.phases import ACTIVE_PHASES, Phase
from controlplane.tenancy.spec import TenantSpec, spec_from_document


@dataclass(frozen=True)
class Registration:
    slug: str
    change: str  # "created" | "updated" | "unchanged"
    generation: int


def register_spec(session: Session, spec: TenantSpec, *, initiator: str, force: bool = False) -> Registration:
    """Store `spec` as the tenant's desired state; a changed spec starts a new generation."""
    tenant = session.get(Tenant, spec.slug)
    digest = spec.digest()
    if tenant is None:
        tenant = Tenant(
            slug=spec.slug,
            kind=spec.kind,
            name_en=spec.names["en"],
            spec=spec.to_document(),
            spec_digest=digest,
            source=spec.source,
            generation=1,
            phase=Phase.PENDING.value,
        )
        session.add(tenant)
        session.flush()
        record_event(
            session,
            action="tenant:create",
            initiator=initiator,
            target=f"tenant:{spec.slug}",
            org=spec.slug,
            detail={"source": spec.source, "digest": digest},
        )
        return Registration(spec.slug, "created", 1)
    if tenant.spec_digest == digest:
        return Registration(spec.slug, "unchanged", tenant.generation)
    if tenant.source.startswith("<request:") and not spec.source.startswith("<") and not force:
        # The desired state came from an approved request; a file that predates it would undo it.
        raise Conflict(
            f"tenant {spec.slug}: the stored spec comes from approved request {tenant.source.strip('<>')}, "
            f"and {spec.source} differs from it",
            hint=f"write the stored spec back: controlplane tenants show {spec.slug} > {spec.source}; "
            "or pass --force to undo the request",
        )
    tenant.spec, tenant.spec_digest, tenant.source = spec.to_document(), digest, spec.source
    tenant.kind, tenant.name_en = spec.kind, spec.names["en"]
    tenant.generation += 1
    tenant.next_attempt_at = None  # a new spec is worth trying at once
    record_event(
        session,
        action="tenant:update",
        initiator=initiator,
        target=f"tenant:{spec.slug}",
        org=spec.slug,
        detail={"generation": tenant.generation, "digest": digest},
    )
    return Registration(spec.slug, "updated", tenant.generation)


def get_tenant(session: Session, slug: str) -> Tenant:
    tenant = session.get(Tenant, slug)
    if tenant is None:
        raise NotFound(
            f"no tenant {slug!r} is registered", hint="register it with: controlplane tenants apply tenants/"
        )
    return tenant


def tenant_spec(tenant: Tenant) -> TenantSpec:
    # Validated when it was registered (register_spec only takes parsed specs): no need to again.
    return spec_from_document(tenant.spec, source=tenant.source or f"<db:{tenant.slug}>", validate=False)


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.slug)))


def live_org_slugs(session: Session) -> list[str]:
    """Organisations that exist and are not being decommissioned: the ones people and tokens may name."""
    active = [p.value for p in ACTIVE_PHASES]
    return list(session.scalars(select(Tenant.slug).where(Tenant.phase.in_(active)).order_by(Tenant.slug)))


def add_event(
    session: Session,
    slug: str,
    kind: str,
    message: str,
    *,
    run_id: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(TenantEvent(tenant_slug=slug, kind=kind, message=message, run_id=run_id, detail=detail or {}))


def recent_events(session: Session, slug: str, limit: int = 50) -> list[TenantEvent]:
    return list(
        session.scalars(
            select(TenantEvent)
            .where(TenantEvent.tenant_slug == slug)
            .order_by(TenantEvent.id.desc())
            .limit(limit)
        )
    )


def remember_resource(session: Session, slug: str, key: str, external_id: str) -> None:
    row = session.scalar(
        select(TenantResource).where(TenantResource.tenant_slug == slug, TenantResource.key == key)
    )
    if row is None:
        session.add(TenantResource(tenant_slug=slug, key=key, external_id=external_id))
    elif row.external_id != external_id:
        row.external_id = external_id


def resources_of(session: Session, slug: str) -> dict[str, str]:
    return {
        r.key: r.external_id
        for r in session.scalars(select(TenantResource).where(TenantResource.tenant_slug == slug))
    }


@dataclass(frozen=True)
class ArchivedVersions:
    """What archiving a signing key did: versions newly kept, and versions already kept with other
    bytes (the key was deleted and made again under the same name; the archive keeps the old ones)."""

    added: tuple[int, ...]
    differing: tuple[int, ...]


def archive_public_keys(session: Session, org: str, key: SigningKey) -> ArchivedVersions:
    """Keep every listed version's public key: Vault stops listing retired versions (or the whole
    key), verifiers must not. Insert-if-absent, so the tenant apply, decommission and document
    signing (in any number of processes) may archive the same version at the same time."""
    archived: dict[int, str] = {
        row.version: row.public_key
        for row in session.execute(
            select(SigningPublicKey.version, SigningPublicKey.public_key).where(
                SigningPublicKey.key_name == key.name
            )
        )
    }
    encoded = {v: base64.b64encode(raw).decode() for v, raw in sorted(key.public_keys.items())}
    differing = tuple(v for v, text in encoded.items() if v in archived and archived[v] != text)
    rows = [
        {"tenant_slug": org, "key_name": key.name, "version": v, "algorithm": key.key_type,
         "public_key": text, "archived_at": utcnow()}
        for v, text in encoded.items() if v not in archived
    ]
    if not rows:
        return ArchivedVersions((), differing)
    make_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    added = session.scalars(
        make_insert(SigningPublicKey)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["key_name", "version"])
        .returning(SigningPublicKey.version)
    ).all()
    return ArchivedVersions(tuple(sorted(added)), differing)


def archived_public_keys(session: Session, slug: str) -> dict[int, str]:
    return {
        k.version: k.public_key
        for k in session.scalars(select(SigningPublicKey).where(SigningPublicKey.tenant_slug == slug))
    }
