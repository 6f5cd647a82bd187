"""`controlplane witness ...`: set up and serve the independent witness (no control-plane settings)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import click

STATE_DIR = click.option(
    "--state-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The witness's own directory: witness.json, state.json, witness.vkey.",
)


def _fail(message: str) -> None:
    click.echo(f"controlplane witness: {message}", err=True)
    sys.exit(2)


@click.group()
def witness() -> None:
    """The witness (the security agency's): co-signs audit checkpoints it finds consistent."""


@witness.command()
@STATE_DIR
@click.option("--name", required=True,
              help="Its key name, a schema-less URL (e.g. agency.example/witness).")
@click.option("--vault-addr", required=True, help="The witness's own OpenBao.")
@click.option("--vault-token-file", default="",
              help="File holding its OpenBao token (or WITNESS_VAULT_TOKEN).")
@click.option("--transit-mount", default="transit", show_default=True)
@click.option("--key", default="witness", show_default=True, help="Its Ed25519 transit key.")
def init(state_dir: Path, name: str, vault_addr: str, vault_token_file: str, transit_mount: str,
         key: str) -> None:
    """Write (or rewrite) witness.json; the logs it trusts are kept."""
    from controlplane.tlog.note import NoteError, check_key_name
    from controlplane.witness.config import WitnessConfig, WitnessConfigError, load_config

    try:
        check_key_name(name)
    except NoteError as exc:
        _fail(str(exc))
    logs: dict[str, list[str]] = {}
    with contextlib.suppress(WitnessConfigError):  # a first init: no config yet
        logs = load_config(state_dir).logs
    WitnessConfig(state_dir, name, vault_addr, vault_token_file, transit_mount, key, logs).save()
    click.echo(f"witness {name}: {state_dir / 'witness.json'} written ({len(logs)} trusted log(s))")


@witness.command("trust-log")
@STATE_DIR
@click.argument("vkeys", nargs=-1, required=True)
def trust_log(state_dir: Path, vkeys: tuple[str, ...]) -> None:
    """Trust log verifier keys (`controlplane audit log-key` prints them) for their origin (= key name)."""
    from controlplane.tlog.note import NoteError, parse_vkey
    from controlplane.witness.config import WitnessConfigError, load_config

    try:
        config = load_config(state_dir)
        logs = {o: list(v) for o, v in config.logs.items()}
        for vkey in vkeys:
            origin = parse_vkey(vkey).name
            if vkey not in logs.setdefault(origin, []):
                logs[origin].append(vkey)
    except (WitnessConfigError, NoteError) as exc:
        _fail(str(exc))
    replace(config, logs=logs).save()
    click.echo(f"trusted log(s): {', '.join(sorted(logs))}")


@witness.command()
@STATE_DIR
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), required=True)
def serve(state_dir: Path, host: str, port: int) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness), GET /latest?origin=, /vkey, /readyz."""
    import logging

    from werkzeug.serving import run_simple

    from controlplane.witness.app import create_app, publish_vkey
    from controlplane.witness.config import WitnessConfigError
    from controlplane.witness.signer import SignerError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(state_dir)
        vkey = publish_vkey(app)
    except (WitnessConfigError, SignerError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"witness {vkey} serving on http://{host}:{port}", err=True)
    run_simple(host, port, app, threaded=True)
