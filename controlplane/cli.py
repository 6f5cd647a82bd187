"""The `controlplane` command: serve, db upgrade|current|grant-verifier, doctor, settings."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from controlplane.commands.context import CliContext, pass_ctx
from controlplane.errors import ControlPlaneError, InvalidSettings

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="controlplane")
def cli() -> None:
    """Control plane of the national data center: tenants on OpenStack, keys in Vault."""


# ------------------------------------------------------------------------------ db
@cli.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_ctx
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Create or upgrade the schema to the code's revision."""
    from controlplane.migrations import current_revision, upgrade_database

    database = ctx.database()
    database.ping()
    before = current_revision(database)
    upgrade_database(database, revision)
    after = current_revision(database)
    click.echo(f"database {database.display_url}: {before or 'empty'} -> {after}")


@db.command("current")
@pass_ctx
def db_current(ctx: CliContext) -> None:
    """Print the schema revision of the database and of the code."""
    from controlplane.migrations import current_revision, head_revision

    database = ctx.database()
    database.ping()
    click.echo(f"database: {current_revision(database) or 'empty'}  code: {head_revision(database)}")


@db.command("grant-verifier")
@pass_ctx
def db_grant_verifier(ctx: CliContext) -> None:
    """Create or update the verification service's own database role (PostgreSQL): SELECT on what it
    reads, INSERT/UPDATE on the verification counts only. The worker also does this at each deploy."""
    from controlplane.tenancy.verifier_db import grant_verifier

    database = ctx.database()
    database.ping()
    role = grant_verifier(database, ctx.settings)
    if role is None:
        click.echo("SQLite: the verification service opens the database read-only; nothing to grant")
    else:
        click.echo(f"database role {role}: read-only but for the verification counts")


# -------------------------------------------------------------------------- doctor
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@pass_ctx
def doctor(ctx: CliContext, as_json: bool) -> None:
    """Check the database, each OpenStack service, Vault and Ansible; exit 1 if any fails."""
    from controlplane.backends import load_backends
    from controlplane.doctor import check_everything

    backends, error = None, None
    try:
        backends = load_backends(ctx.settings)
    except ControlPlaneError as exc:
        error = exc
    checks = check_everything(ctx.database(), backends, error, witness_url=ctx.settings.witness_url)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            state = click.style("ok  ", fg="green") if c.ok else click.style("FAIL", fg="red")
            version = f" [{c.version}]" if c.version else ""
            line = f"{state} {c.name:<{width}}  {c.detail}{version}"
            if not c.ok and c.hint:
                line += f"\n     {'':<{width}}  fix: {c.hint}"
            click.echo(line)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        click.echo(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}", err=True)
        sys.exit(1)
    click.echo(f"all {len(checks)} checks passed")


# ------------------------------------------------------------------------ settings
@cli.command("settings")
@pass_ctx
def show_settings(ctx: CliContext) -> None:
    """Print the effective settings, secrets masked."""
    for key, value in ctx.settings.redacted().items():
        click.echo(f"{key} = {value}")


# --------------------------------------------------------------------------- serve
@cli.command()
@click.option("--host", default=None, help="Listen address (default: settings.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: settings.port).")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--upgrade-db/--no-upgrade-db", default=False,
              help="Apply pending schema migrations before serving.")
@pass_ctx
def serve(ctx: CliContext, host: str | None, port: int | None, workers: int,
          upgrade_db: bool) -> None:
    """Serve the console and API with gunicorn; creates the bootstrap operator on first run."""
    settings = ctx.settings
    database = ctx.database()
    database.ping()
    from controlplane.migrations import current_revision, head_revision, upgrade_database

    if upgrade_db:
        upgrade_database(database)
    current, head = current_revision(database), head_revision(database)
    if current != head:
        raise ControlPlaneError(
            f"the database schema is at {current or 'nothing'}, the code needs {head}",
            hint="run: controlplane db upgrade   (or serve --upgrade-db)",
        )
    from controlplane.accounts.service import BOOTSTRAP_USERNAME, ensure_bootstrap_operator

    with database.transaction() as session:
        password = ensure_bootstrap_operator(session)
        if settings.role == "full":
            _reseal_mfa_secrets(session, settings)
    database.dispose()  # workers open their own connections after the fork
    bind_host, bind_port = host or settings.host, port or settings.port
    url = f"http://{bind_host}:{bind_port}/"
    if password:
        # Printed once to the terminal, never logged; the account must change it at first sign-in.
        click.echo(click.style(
            f"\n  Bootstrap operator created. Sign in at {url}\n"
            f"    username: {BOOTSTRAP_USERNAME}\n    one-time password: {password}\n"
            "  This password is shown only now; you will choose your own at first sign-in.\n",
            bold=True))
    else:
        click.echo(f"sign in at {url} with your operator account (the first one is "
                   f"'{BOOTSTRAP_USERNAME}'; its one-time password was printed at first start)")
    click.echo(f"serving the control plane at {url} with {workers} worker(s)")
    # The address served decides secure_cookies=auto, so --host counts as the host setting.
    _run_gunicorn(settings.replace(host=bind_host), bind=f"{bind_host}:{bind_port}", workers=workers)


def _reseal_mfa_secrets(session: Any, settings: Any) -> None:
    """Make the MFA key file on first start, and re-seal under it every TOTP secret an earlier
    release sealed under a SECRET_KEY-derived key (so none waits for its owner's next sign-in)."""
    from controlplane.accounts.mfa import SecretBox, reseal_legacy_secrets
    from controlplane.app import load_or_create_secret_key

    box = SecretBox.from_key_file(settings.effective_mfa_key_file,
                                  legacy_secret_key=load_or_create_secret_key(settings))
    resealed = reseal_legacy_secrets(session, box)
    if resealed:
        click.echo(f"re-sealed {resealed} TOTP secret(s) under {settings.effective_mfa_key_file}")


def _run_gunicorn(settings: Any, *, bind: str, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from controlplane.app import create_app

    class ControlPlaneServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": bind, "workers": workers, "worker_class": "gthread", "threads": 4,
                "timeout": 60, "graceful_timeout": 10, "accesslog": "-",
                "control_socket_disable": True,
                "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
            }.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    ControlPlaneServer().run()


def _register_command_groups() -> None:
    from controlplane.commands.audit import audit
    from controlplane.commands.documents import documents
    from controlplane.commands.documents_monitor import monitor
    from controlplane.commands.tenants import tenants, worker
    from controlplane.commands.users import users
    from controlplane.commands.witness import witness

    cli.add_command(tenants)
    cli.add_command(worker)
    documents.add_command(monitor)  # its own module; registered on the group here, idempotently
    cli.add_command(documents)
    cli.add_command(audit)
    cli.add_command(users)
    cli.add_command(witness)


# ---------------------------------------------------------------------------- main
def _prepare_metrics_dir() -> None:
    """gunicorn workers are separate processes: Prometheus needs a shared directory to sum them."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    path = Path(tempfile.mkdtemp(prefix="controlplane-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        _prepare_metrics_dir()
    _register_command_groups()
    try:
        cli.main(args=args, prog_name="controlplane", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InvalidSettings as exc:
        click.echo(f"controlplane: {exc.message}", err=True)
        sys.exit(2)
    except ControlPlaneError as exc:
        click.echo(f"controlplane: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  fix: {exc.hint}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # A person at a terminal gets one line; developers set CONTROLPLANE_DEBUG=1 for the trace.
        if os.environ.get("CONTROLPLANE_DEBUG"):
            raise
        click.echo(f"controlplane: unexpected error: {type(exc).__name__}: {exc}", err=True)
        click.echo("  (set CONTROLPLANE_DEBUG=1 to see the traceback)", err=True)
        sys.exit(1)
