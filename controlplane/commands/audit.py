"""`controlplane audit ...`: sequence the log, check it in the database, export and verify bundles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from controlplane.commands.context import pass_ctx


def _pinned_path(ctx: Any, given: str | None) -> Path:
    from controlplane.audit.checkpoints import PINNED_KEY_FILE

    return Path(given) if given else Path(ctx.settings.instance_path) / PINNED_KEY_FILE


def _read_keys(path: Path, what: str) -> list[bytes]:
    from controlplane.audit.checkpoints import read_pinned_keys

    try:
        return read_pinned_keys(path)
    except (OSError, ValueError) as exc:
        click.echo(f"controlplane: cannot read the pinned {what} key file {path}: {exc}", err=True)
        sys.exit(2)


@click.group()
def audit() -> None:
    """The tamper-evident audit log: sequence, check, export, verify."""


@audit.command()
@click.option("--cosign/--no-cosign", default=False, help="Also let the witness co-sign the checkpoint.")
@pass_ctx
def sequence(ctx: Any, cosign: bool) -> None:
    """Integrate pending events into the Merkle log and sign a checkpoint, once."""
    from controlplane.audit.checkpoints import PINNED_KEY_FILE
    from controlplane.audit.sequencer import cosign_checkpoint, run_sequencer
    from controlplane.backends import load_publisher_keys
    from controlplane.backends.vault import VaultKeys

    db = ctx.database()
    db.ping()
    # the audit key sits behind the publisher's identity (vault_publisher_token) where there is one
    keys = load_publisher_keys(ctx.settings) or VaultKeys.from_settings(ctx.settings)
    integrated, cp = run_sequencer(db, keys, pin_path=Path(ctx.settings.instance_path) / PINNED_KEY_FILE)
    click.echo(f"integrated {integrated.added} event(s); tree size {integrated.tree_size}")
    click.echo(
        f"signed a checkpoint at tree size {cp.tree_size}" if cp else "no new checkpoint (nothing new)"
    )
    if cosign:
        witnessed = cosign_checkpoint(db, keys)
        click.echo(f"the witness co-signed tree size {witnessed.tree_size}")


@audit.command("recount-hours")
@pass_ctx
def recount_hours(ctx: Any) -> None:
    """Recount the per-hour event counts behind the auditor's timeline from the log itself (after
    restoring a backup, say). The log is only read; the recount is itself an audit event."""
    from controlplane.audit import hours, record_event
    from controlplane.audit.events import AuditAction

    db = ctx.database()
    db.ping()
    with db.transaction() as session:
        counted = hours.rebuild(session)
        record_event(session, action=AuditAction.AUDIT_HOURS_RECOUNT, initiator="cli:audit",
                     target="audit_event_hours", detail={"events": counted})
    click.echo(f"recounted {counted} sequenced event(s) into hourly counts")


@audit.command()
@click.option(
    "--audit-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pinned audit public key(s), PEM (default: audit-keys.pem in the instance folder).",
)
@pass_ctx
def check(ctx: Any, audit_key: str | None) -> None:
    """Walk the database; name the first entry that was edited, deleted, reordered or inserted."""
    from controlplane.audit.check import check_log

    db = ctx.database()
    db.ping()
    path = _pinned_path(ctx, audit_key)
    pinned = _read_keys(path, "audit") if (audit_key or path.is_file()) else None
    report = check_log(db, pinned_audit_keys=pinned)
    trust = f"pinned key {path}" if pinned is not None else "archived keys (no pinned key file)"
    click.echo(
        f"tree size {report.tree_size}, {report.checkpoints} checkpoint(s) "
        f"({report.witnessed} co-signed), {report.pending} pending; signatures checked with {trust}"
    )
    first = report.first
    if first is None:
        click.echo("audit log intact")
        return
    click.echo(f"FAULT {first}", err=True)
    others = len(report.faults) - 1
    if others:
        click.echo(f"  and {others} more fault(s):", err=True)
        for fault in report.faults:
            if fault is not first:
                click.echo(f"  - {fault}", err=True)
    sys.exit(1)


@audit.command()
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Bundle file (.tar.gz).")
@pass_ctx
def export(ctx: Any, output: str) -> None:
    """Write a bundle (events as CADF leaf inputs, checkpoints, keys, proofs) for offline verification."""
    from controlplane.audit.bundle import export_bundle

    db = ctx.database()
    db.ping()
    done = export_bundle(db, Path(output))
    click.echo(f"exported {done.tree_size} event(s) and {done.checkpoints} checkpoint(s) to {done.path}")


@audit.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--audit-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pinned audit public key(s), PEM (default: audit-keys.pem in the instance folder).",
)
@click.option(
    "--witness-key",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Pinned witness public key(s), PEM; without it the bundled witness key is used.",
)
@pass_ctx
def verify(ctx: Any, bundle: str, audit_key: str | None, witness_key: str | None) -> None:
    """Verify a bundle with no database and no network; exit 1 naming the fault."""
    from controlplane.audit.verify import verify_bundle

    path = _pinned_path(ctx, audit_key)
    if not path.is_file():
        click.echo(f"controlplane: no pinned audit key at {path}; pass --audit-key FILE", err=True)
        sys.exit(2)
    pinned = _read_keys(path, "audit")
    witness = _read_keys(Path(witness_key), "witness") if witness_key else None
    report = verify_bundle(Path(bundle), pinned_audit_keys=pinned, pinned_witness_keys=witness)
    if report.faults:
        click.echo(f"FAULT {report.faults[0]}", err=True)
        for fault in report.faults[1:]:
            click.echo(f"  - {fault}", err=True)
        sys.exit(1)
    click.echo(
        f"bundle verified: {report.tree_size} event(s), {report.checkpoints} checkpoint(s), "
        f"{report.witnessed} co-signed by the witness"
    )
