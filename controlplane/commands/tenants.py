"""`controlplane tenants ...` and `controlplane worker`: tenant vending from the command line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import click

from controlplane.commands.context import pass_ctx
from controlplane.errors import ControlPlaneError, InvalidInput

CONCURRENCY = click.IntRange(1, 32)


class _Printer:
    """Progress lines with elapsed seconds, safe to call from worker threads."""

    def __init__(self, quiet: bool = False) -> None:
        self.started, self.quiet, self.lock = time.perf_counter(), quiet, threading.Lock()

    def __call__(self, slug: str, message: str) -> None:
        if self.quiet:
            return
        with self.lock:
            click.echo(f"[{time.perf_counter() - self.started:6.1f}s] {slug}: {message}", err=True)


def _env(ctx: Any) -> tuple[Any, Any, Any]:
    from controlplane.backends import load_backends
    from controlplane.migrations import current_revision, head_revision

    settings = ctx.settings
    db = ctx.database()
    db.ping()
    if current_revision(db) != head_revision(db):
        raise ControlPlaneError("the database schema is not current", hint="run: controlplane db upgrade")
    return settings, db, load_backends(settings)


def _load(directory: str | None, ctx: Any, only: tuple[str, ...] = ()) -> list[Any]:
    from controlplane.tenancy.spec import load_specs

    specs = load_specs(Path(directory or ctx.settings.tenants_dir))
    if only:
        unknown = set(only) - {s.slug for s in specs}
        if unknown:
            raise InvalidInput(f"no spec for tenant(s): {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.slug in only]
    return specs


@click.group()
def tenants() -> None:
    """Declarative tenants: validate, plan, apply, status, drift, import, decommission."""


@tenants.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@pass_ctx
def validate(ctx: Any, directory: str | None) -> None:
    """Check every spec against the schema; print file:line: field for each problem."""
    specs = _load(directory, ctx)
    for spec in specs:
        envs = ", ".join(e.name for e in spec.environments)
        click.echo(f"ok  {spec.slug:<22} {spec.kind:<15} {envs}")
    click.echo(f"{len(specs)} tenant spec(s) valid")


@tenants.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--tenant", "only", multiple=True, help="Only this tenant (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def plan(ctx: Any, directory: str | None, only: tuple[str, ...], as_json: bool) -> None:
    """Show what apply would create, update or delete, per resource. Changes nothing."""
    from controlplane.tenancy.reconciler import plan_for

    settings, db, backends = _env(ctx)
    specs = _load(directory, ctx, only)
    out, total = [], 0
    for spec in specs:
        p = plan_for(spec, db=db, backends=backends, settings=settings)
        total += len(p.actions)
        out.append(p)
        if not as_json:
            counts = p.summary()
            click.echo(
                f"{spec.slug}: {counts['create']} to create, {counts['update']} to update, "
                f"{counts['delete']} to delete"
            )
            for action in p.actions:
                click.echo(f"  {action.describe()}")
            for refusal in p.refusals:
                click.echo(click.style(f"  refused: {refusal}", fg="red"))
            for note in p.notes:
                click.echo(f"  note: {note}")
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "tenant": p.tenant,
                        "actions": [a.describe() for a in p.actions],
                        "refusals": list(p.refusals),
                        "notes": list(p.notes),
                    }
                    for p in out
                ],
                indent=2,
            )
        )
    else:
        click.echo(f"{total} change(s) in {len(out)} tenant(s); nothing was changed")


@tenants.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--tenant", "only", multiple=True, help="Only this tenant (repeatable).")
@click.option("--concurrency", type=CONCURRENCY, default=4, show_default=True)
@click.option("--skip-playbook", is_flag=True, help="Do not run the baseline playbook.")
@click.option("--force", is_flag=True, help="Let the files overwrite changes made by approved requests.")
@click.option("--quiet", is_flag=True)
@pass_ctx
def apply(
    ctx: Any,
    directory: str | None,
    only: tuple[str, ...],
    concurrency: int,
    skip_playbook: bool,
    force: bool,
    quiet: bool,
) -> None:
    """Store the specs and converge each tenant now. An invalid spec applies nothing."""
    from controlplane.tenancy.service import reconcile_many, register_specs

    specs = _load(directory, ctx, only)  # every file validated before anything is stored
    settings, db, backends = _env(ctx)
    regs = register_specs(db, specs, initiator="cli:tenants-apply", force=force)
    for r in regs:
        if r.change != "unchanged":
            click.echo(f"{r.slug}: spec {r.change} (generation {r.generation})", err=True)
    outcomes = reconcile_many(
        [s.slug for s in specs],
        db=db,
        backends=backends,
        settings=settings,
        concurrency=concurrency,
        initiator="cli:tenants-apply",
        progress=_Printer(quiet),
        run_baseline_playbook=not skip_playbook,
    )
    bad = [o for o in outcomes if o.status in ("failed", "refused")]
    for o in outcomes:
        line = f"{o.slug:<22} {o.status:<9} {o.actions:>3} action(s) {o.drift:>2} drift  {o.seconds:5.1f}s"
        click.echo(line + (f"  {o.error}" if o.error else ""))
    if bad:
        raise ControlPlaneError(
            f"{len(bad)} of {len(outcomes)} tenant(s) did not converge: " + ", ".join(o.slug for o in bad)
        )


@tenants.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@pass_ctx
def register(ctx: Any, directory: str | None) -> None:
    """Store the specs as desired state without converging; the worker applies them."""
    from controlplane.tenancy.service import register_specs

    specs = _load(directory, ctx)
    _settings, db, _backends = _env(ctx)
    for r in register_specs(db, specs, initiator="cli:tenants-register"):
        click.echo(f"{r.slug:<22} {r.change:<9} generation {r.generation}")


@tenants.command()
@click.argument("slug")
@pass_ctx
def show(ctx: Any, slug: str) -> None:
    """Print the stored desired spec of SLUG as YAML (e.g. to write an approved change back to a file)."""
    import yaml

    from controlplane.tenancy.registry import get_tenant

    db = ctx.database()
    db.ping()
    with db.transaction() as s:
        document = get_tenant(s, slug).spec
    click.echo(f"# stored desired state of {slug}", nl=True)
    click.echo(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), nl=False)


@tenants.command()
@pass_ctx
def status(ctx: Any) -> None:
    """Phase, generation, drift and last error of every registered tenant."""
    from controlplane.tenancy.registry import list_tenants

    db = ctx.database()
    db.ping()
    with db.transaction() as s:
        rows = list_tenants(s)
        click.echo(f"{'tenant':<22} {'phase':<13} {'gen':>4} {'applied':>7} {'drift':>5}  last reconciled")
        for t in rows:
            when = f"{t.last_reconciled_at:%Y-%m-%d %H:%M:%S}" if t.last_reconciled_at else "never"
            click.echo(
                f"{t.slug:<22} {t.phase:<13} {t.generation:>4} {t.applied_generation:>7} "
                f"{t.drift_count:>5}  {when}" + (f"  error: {t.last_error[:80]}" if t.last_error else "")
            )


@tenants.command()
@click.option("--tenant", "only", multiple=True)
@click.option("--repair/--no-repair", default=False, help="Repair what drifted (apply).")
@pass_ctx
def drift(ctx: Any, only: tuple[str, ...], repair: bool) -> None:
    """Compare every applied tenant with the cloud; exit 1 if anything drifted."""
    from controlplane.tenancy.phases import Phase
    from controlplane.tenancy.reconciler import plan_for
    from controlplane.tenancy.registry import list_tenants, tenant_spec
    from controlplane.tenancy.service import reconcile_many

    settings, db, backends = _env(ctx)
    with db.transaction() as s:
        specs = {
            t.slug: tenant_spec(t)
            for t in list_tenants(s)
            if t.phase == Phase.READY.value and (not only or t.slug in only)
        }
    slugs = list(specs)
    drifted = []
    for slug in slugs:
        p = plan_for(specs[slug], db=db, backends=backends, settings=settings)
        if p.drift:
            drifted.append(slug)
            click.echo(f"{slug}: {len(p.drift)} drift")
            for a in p.drift:
                click.echo(f"  {a.describe()}")
    if repair and drifted:
        reconcile_many(drifted, db=db, backends=backends, settings=settings, progress=_Printer())
        click.echo(f"repaired {len(drifted)} tenant(s)")
        return
    click.echo(f"{len(drifted)} of {len(slugs)} ready tenant(s) drifted")
    if drifted:
        raise SystemExit(1)


@tenants.command("import")
@click.argument("slug")
@click.option("--from", "directory", type=click.Path(file_okay=False), help="Spec directory.")
@pass_ctx
def import_(ctx: Any, slug: str, directory: str | None) -> None:
    """Adopt an existing Keystone domain (and its projects) named like tenant SLUG."""
    from controlplane.tenancy.service import mark_imported

    specs = _load(directory, ctx, (slug,))
    _settings, db, backends = _env(ctx)
    mark_imported(db, backends, specs[0], initiator="cli:tenants-import")
    click.echo(f"{slug}: marked for adoption; run `controlplane tenants apply --tenant {slug}` to converge")


@tenants.command()
@click.argument("slug")
@click.option(
    "--to",
    "stage",
    type=click.Choice(["disabled", "archived", "retained", "deleted"]),
    default="disabled",
    show_default=True,
    help="Advance through the stages up to this one.",
)
@click.option("--retention-days", type=click.IntRange(0, 36500), default=365, show_default=True)
@click.option("--confirm", required=True, help="Type the tenant's slug again to confirm.")
@pass_ctx
def decommission(ctx: Any, slug: str, stage: str, retention_days: int, confirm: str) -> None:
    """Staged decommission: disabled -> archived -> retained (hold) -> deleted."""
    from controlplane.accounts.admin import close_organisation
    from controlplane.tenancy import decommission as dec
    from controlplane.tenancy.phases import DECOMMISSION_ORDER, Phase
    from controlplane.tenancy.registry import get_tenant

    if confirm != slug:
        raise InvalidInput(f"--confirm must repeat the tenant's slug ({slug!r}); nothing was changed")
    settings, db, backends = _env(ctx)
    target = DECOMMISSION_ORDER.index(Phase(stage))
    while True:
        with db.transaction() as s:
            phase = Phase(get_tenant(s, slug).phase)
        if phase in DECOMMISSION_ORDER and DECOMMISSION_ORDER.index(phase) >= target:
            click.echo(f"{slug}: {phase.value}")
            return
        step = dec.NEXT_STAGE.get(phase.value)
        click.echo(f"{slug}: {phase.value} -> {step.value if step else '(none)'}", err=True)
        # advance() raises Conflict when the phase has no next stage (e.g. provisioning).
        dec.advance(db, backends, slug, initiator="cli:tenants-decommission", retention_days=retention_days,
                    settings=settings, close_access=close_organisation,
                    progress=lambda m: click.echo(f"  {m}", err=True))


@tenants.command("rotate-key")
@click.argument("slug")
@click.option("--reason", required=True, help="Why the key is rotated (3 to 500 characters); audited.")
@pass_ctx
def rotate_key(ctx: Any, slug: str, reason: str) -> None:
    """Sign SLUG's documents with a new version of its key from now on; old documents still verify."""
    from controlplane.tenancy.keys import rotate_signing_key

    _settings, db, backends = _env(ctx)
    done = rotate_signing_key(db, backends.keys, slug, initiator="cli:tenants-rotate-key", reason=reason)
    click.echo(f"{slug}: signing key {done.key} rotated from version {done.from_version} "
               f"to {done.to_version}")


@click.command()
@click.option("--once", is_flag=True, help="One pass over due tenants, then exit.")
@click.option("--interval", type=click.IntRange(5, 3600), default=60, show_default=True)
@click.option("--concurrency", type=CONCURRENCY, default=4, show_default=True)
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0,
              help="Serve this worker's Prometheus metrics, /healthz and /readyz on 127.0.0.1:PORT "
                   "(0: off).")
@pass_ctx
def worker(ctx: Any, once: bool, interval: int, concurrency: int, metrics_port: int) -> None:
    """Reconcile tenants continuously: drift detection and repair on every pass; then the changes
    the console queued, usage for the console, the trust list and the audit log."""
    from sqlalchemy.exc import SQLAlchemyError

    from controlplane import metrics
    from controlplane.accounts.admin import close_organisation
    from controlplane.audit.checkpoints import PINNED_KEY_FILE
    from controlplane.audit.sequencer import sequence_forever, with_sequencer
    from controlplane.audit.witnessing import WitnessLink
    from controlplane.backends import load_publisher_keys, stopping
    from controlplane.documents.publication import publish_when_due
    from controlplane.requests.desired import sync_outcomes
    from controlplane.storage import Database
    from controlplane.tenancy.handoff import run_tasks
    from controlplane.tenancy.snapshots import record_usage
    from controlplane.tenancy.verifier_db import grant_verifier
    from controlplane.tenancy.worker import readiness, run_worker

    settings, db, backends = _env(ctx)
    if settings.role not in ("worker", "full"):
        raise click.UsageError(f"the worker runs in role 'worker' (or 'full'), not {settings.role!r}")
    # The trust-root and audit keys sit behind their own policy (vault_publisher_token): only the
    # publisher and the sequencer use that identity; without it (role full) the worker's own.
    publisher = load_publisher_keys(settings) or backends.keys
    try:  # the verification service's own database role, kept current
        grant_verifier(db, settings)
    except SQLAlchemyError as exc:  # no CREATEROLE: the administrator runs `db grant-verifier`
        click.echo(f"verifier database role not updated ({type(exc).__name__}); run "
                   "`controlplane db grant-verifier` as the database's administrator", err=True)
    if metrics_port:
        # The worker has no web app: reconcile outcomes and durations reach Prometheus from here,
        # and /readyz says whether its loop runs (scripts/run checks it).
        metrics.start_exporter(metrics_port, ready=lambda: readiness(interval))

    def after_pass(database: Database) -> None:
        sync_outcomes(database)
        # what the console queued (tenancy.handoff)
        run_tasks(database, backends, settings, close_access=close_organisation)
        record_usage(database, backends.cloud)  # what the console shows (tenancy.snapshots)
        publish_when_due(database, publisher)
        if once:
            sequencer(database)

    # The audit log is sequenced, signed and sent to the witness every audit_sequence_seconds on
    # its own thread, whatever the reconcile interval (README, Audit: the window for deleting
    # events not yet sequenced); --once does it once after the pass.
    sequencer = with_sequencer(None, publisher, pin_path=Path(settings.instance_path) / PINNED_KEY_FILE,
                               origin=settings.audit_origin, witness=WitnessLink.from_settings(settings))
    if not once:
        sequence_forever(sequencer, db, every=settings.audit_sequence_seconds, stop=stopping.stop_event())
    run_worker(
        # after each pass: requests learn their outcomes, queued changes are made, usage is
        # recorded, the trust list is republished when due
        after_pass=after_pass,
        db=db,
        backends=backends,
        settings=settings,
        once=once,
        interval=interval,
        concurrency=concurrency,
        progress=_Printer(),
    )
