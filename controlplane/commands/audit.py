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
@click.option("--witness/--no-witness", "use_witness", default=True,
              help="Send the checkpoint to the witness (witness_url) for its cosignature.")
@pass_ctx
def sequence(ctx: Any, use_witness: bool) -> None:
    """Integrate pending events into the Merkle log, sign a checkpoint, have the witness co-sign it."""
    from controlplane.audit.checkpoints import PINNED_KEY_FILE
    from controlplane.audit.sequencer import run_sequencer
    from controlplane.audit.witnessing import WitnessLink, WitnessRefused, cosign_latest
    from controlplane.backends import load_publisher_keys
    from controlplane.backends.vault import VaultKeys
    from controlplane.tlog.protocol import WitnessUnreachable

    db = ctx.database()
    db.ping()
    # the audit key sits behind the publisher's identity (vault_publisher_token) where there is one
    keys = load_publisher_keys(ctx.settings) or VaultKeys.from_settings(ctx.settings)
    integrated, cp = run_sequencer(db, keys, pin_path=Path(ctx.settings.instance_path) / PINNED_KEY_FILE,
                                   origin=ctx.settings.audit_origin)
    click.echo(f"integrated {integrated.added} event(s); tree size {integrated.tree_size}")
    click.echo(
        f"signed a checkpoint at tree size {cp.tree_size}" if cp else "no new checkpoint (nothing new)"
    )
    if not use_witness:
        return
    link = WitnessLink.from_settings(ctx.settings)
    if link is None:
        click.echo("no witness configured (witness_url): checkpoints are not co-signed")
        return
    try:
        witnessed = cosign_latest(db, link)
    except (WitnessRefused, WitnessUnreachable) as exc:
        click.echo(f"FAULT witness: {exc}", err=True)
        sys.exit(1)
    click.echo(f"the witness co-signed tree size {witnessed.tree_size}" if witnessed
               else "the latest checkpoint was already co-signed")


@audit.command("log-key")
@pass_ctx
def log_key(ctx: Any) -> None:
    """Print the audit key's C2SP verifier key(s) for the log's origin (what a witness trusts);
    the key is made in Vault on first use."""
    from controlplane.audit.checkpoints import AUDIT_KEY
    from controlplane.backends import load_publisher_keys
    from controlplane.backends.vault import VaultKeys
    from controlplane.tlog.note import ed25519_verifier

    # the audit key is the publisher's to create (vault_publisher_token) where there is one
    keys = load_publisher_keys(ctx.settings) or VaultKeys.from_settings(ctx.settings)
    public = keys.ensure_signing_key(AUDIT_KEY).public_keys
    for version in sorted(public):
        click.echo(ed25519_verifier(ctx.settings.audit_origin, public[version]).vkey())


def _witness_keys(ctx: Any, given: str | None) -> tuple[list[Any], list[bytes] | None]:
    """C2SP witness vkeys and legacy PEM keys from --witness-key FILE, else the witness_vkey setting."""
    from controlplane.tlog.note import NoteError, parse_vkey

    if not given:
        try:
            return [parse_vkey(v) for v in ctx.settings.witness_vkey.split()], None
        except NoteError as exc:
            click.echo(f"controlplane: witness_vkey: {exc}", err=True)
            sys.exit(2)
    text = Path(given).read_text(encoding="ascii")
    vkeys, in_pem = [], False
    for line in (raw.strip() for raw in text.splitlines()):
        if line.startswith("-----"):
            in_pem = line.startswith("-----BEGIN")
        elif not in_pem and "+" in line and " " not in line:  # PEM label lines have spaces
            vkeys.append(line)
    try:
        witnesses = [parse_vkey(v) for v in vkeys]
    except NoteError as exc:
        click.echo(f"controlplane: {given}: {exc}", err=True)
        sys.exit(2)
    legacy = _read_keys(Path(given), "witness") if "BEGIN PUBLIC KEY" in text else None
    return witnesses, legacy


def _pinned_checkpoint(ctx: Any, since: str | None, since_witness: str | None, witnesses: list[Any],
                       origin: str) -> Any:
    from controlplane.audit.pinning import parse_since, pinned_from_witness
    from controlplane.errors import InvalidInput

    try:
        if since:
            return parse_since(since)
        if since_witness:
            return pinned_from_witness(since_witness, origin, witnesses)
    except InvalidInput as exc:
        click.echo(f"controlplane: {exc.message}", err=True)
        sys.exit(2)
    return None


SINCE = click.option("--since", default=None, metavar="SIZE:ROOTHEX",
                     help="A checkpoint the log must still extend (size and hex root hash).")
SINCE_WITNESS = click.option(
    "--since-witness", default=None, metavar="URL",
    help="Pin the witness's latest co-signed checkpoint (checked with its pinned key).",
)
WITNESS_KEY_FILE = click.option(
    "--witness-key", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Pinned witness key(s): C2SP vkey lines (and/or old PEM keys); default: witness_vkey.",
)


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
@SINCE
@SINCE_WITNESS
@WITNESS_KEY_FILE
@pass_ctx
def check(ctx: Any, audit_key: str | None, since: str | None, since_witness: str | None,
          witness_key: str | None) -> None:
    """Walk the database; name the first entry that was edited, deleted, reordered or inserted, a
    truncation, fork or rewrite against a pinned checkpoint, and events left unsequenced too long."""
    from datetime import timedelta

    from controlplane.audit.check import check_log

    db = ctx.database()
    db.ping()
    path = _pinned_path(ctx, audit_key)
    pinned = _read_keys(path, "audit") if (audit_key or path.is_file()) else None
    witnesses, _legacy = _witness_keys(ctx, witness_key)
    pin = _pinned_checkpoint(ctx, since, since_witness, witnesses, ctx.settings.audit_origin)
    window = timedelta(seconds=ctx.settings.audit_pending_window_seconds)
    report = check_log(db, pinned_audit_keys=pinned, witnesses=witnesses, since=pin, pending_window=window)
    trust = f"pinned key {path}" if pinned is not None else "archived keys (no pinned key file)"
    click.echo(
        f"tree size {report.tree_size}, {report.checkpoints} checkpoint(s) "
        f"({report.witnessed} co-signed), {report.pending} pending; signatures checked with {trust}"
        + (f"; must extend {pin}" if pin is not None else "")
    )
    if not witnesses:
        click.echo("no witness key pinned (witness_vkey): cosignatures were not checked")
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
    done = export_bundle(db, Path(output), witness_vkeys=ctx.settings.witness_vkey.split())
    click.echo(f"exported {done.tree_size} event(s) and {done.checkpoints} checkpoint(s) to {done.path}")


@audit.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--audit-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Pinned audit public key(s), PEM (default: audit-keys.pem in the instance folder).",
)
@WITNESS_KEY_FILE
@SINCE
@SINCE_WITNESS
@pass_ctx
def verify(ctx: Any, bundle: str, audit_key: str | None, witness_key: str | None, since: str | None,
           since_witness: str | None) -> None:
    """Verify a bundle with no database (and no network unless --since-witness); exit 1 naming the fault."""
    from controlplane.audit.verify import verify_bundle

    path = _pinned_path(ctx, audit_key)
    if not path.is_file():
        click.echo(f"controlplane: no pinned audit key at {path}; pass --audit-key FILE", err=True)
        sys.exit(2)
    pinned = _read_keys(path, "audit")
    # pinned witness keys: --witness-key, else witness_vkey, else (weakest) the bundle's own
    witnesses, legacy = _witness_keys(ctx, witness_key)
    pin = _pinned_checkpoint(ctx, since, since_witness, witnesses, ctx.settings.audit_origin)
    report = verify_bundle(Path(bundle), pinned_audit_keys=pinned, pinned_witness_keys=legacy,
                           witnesses=witnesses or None, since=pin)
    if report.faults:
        click.echo(f"FAULT {report.faults[0]}", err=True)
        for fault in report.faults[1:]:
            click.echo(f"  - {fault}", err=True)
        sys.exit(1)
    click.echo(
        f"bundle verified: {report.tree_size} event(s), {report.checkpoints} checkpoint(s), "
        f"{report.witnessed} co-signed by the witness" + (f"; extends {pin}" if pin is not None else "")
    )
