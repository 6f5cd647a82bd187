"""`controlplane users ...`: the data center's own staff administer people at the console host."""

from __future__ import annotations

from typing import Any

import click

from controlplane.commands.context import pass_ctx

ROLES = ("operator", "org_admin", "org_member", "auditor")


def _known_orgs(session: Any) -> list[str]:
    from controlplane.tenancy import registry
    from controlplane.tenancy.phases import ACTIVE_PHASES, Phase

    return [t.slug for t in registry.list_tenants(session) if Phase(t.phase) in ACTIVE_PHASES]


def _print_password(username: str, password: str) -> None:
    # Printed once to this terminal, never logged; the person changes it at first sign-in.
    click.echo(f"  username: {username}\n  one-time password: {password}\n"
               "  This password is shown only now; it must be changed at first sign-in.")


@click.group()
def users() -> None:
    """People: create, list, change role, disable/enable, reset password (recorded as cli:users)."""


@users.command()
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", default="", help="Organisation (tenant slug) for org_admin/org_member.")
@click.option("--name", "display_name", default="", help="Display name.")
@pass_ctx
def create(ctx: Any, username: str, role: str, org: str, display_name: str) -> None:
    """Create a person with a one-time password."""
    from controlplane.accounts.admin import CLI_ACTOR, create_person

    with ctx.database().transaction() as db:
        created = create_person(db, CLI_ACTOR, username=username, role=role, org=org,
                                display_name=display_name, known_orgs=_known_orgs(db))
    click.echo(f"created {role} {username}" + (f" of {org}" if org else ""))
    _print_password(username, created.one_time_password)


@users.command("list")
@click.option("--org", default="", help="Only this organisation.")
@click.option("--role", type=click.Choice(ROLES), default=None, help="Only this role.")
@pass_ctx
def list_(ctx: Any, org: str, role: str | None) -> None:
    """List people."""
    from controlplane.accounts.admin import CLI_ACTOR, list_people

    with ctx.database().transaction() as db:
        rows = list_people(db, CLI_ACTOR, org=org, role=role or "")
    for u in rows:
        state = "disabled" if u.disabled else "enabled"
        mfa = "mfa" if u.mfa_enrolled_at else "no-mfa"
        click.echo(f"{u.username:<24} {u.role:<11} {u.org or '-':<20} {state:<8} {mfa}")
    click.echo(f"{len(rows)} person(s)")


@users.command("set-role")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", default="", help="Organisation (tenant slug) for org_admin/org_member.")
@pass_ctx
def set_role(ctx: Any, username: str, role: str, org: str) -> None:
    """Change a person's role (and organisation); their sessions end."""
    from controlplane.accounts.admin import CLI_ACTOR, change_role

    with ctx.database().transaction() as db:
        change_role(db, CLI_ACTOR, username, role=role, org=org, known_orgs=_known_orgs(db))
    click.echo(f"{username} is now {role}" + (f" of {org}" if org else ""))


@users.command()
@click.argument("username")
@pass_ctx
def disable(ctx: Any, username: str) -> None:
    """Disable a person; their sessions and bound API tokens are revoked."""
    from controlplane.accounts.admin import CLI_ACTOR, disable_person

    with ctx.database().transaction() as db:
        disable_person(db, CLI_ACTOR, username)
    click.echo(f"{username} is disabled")


@users.command()
@click.argument("username")
@pass_ctx
def enable(ctx: Any, username: str) -> None:
    """Enable a disabled person."""
    from controlplane.accounts.admin import CLI_ACTOR, enable_person

    with ctx.database().transaction() as db:
        enable_person(db, CLI_ACTOR, username)
    click.echo(f"{username} is enabled")


@users.command("reset-password")
@click.argument("username")
@click.option("--reset-mfa", is_flag=True, help="Also remove their authenticator (lost phone).")
@pass_ctx
def reset_password(ctx: Any, username: str, reset_mfa: bool) -> None:
    """Give a person a new one-time password; their sessions and bound tokens end."""
    from controlplane.accounts.admin import CLI_ACTOR
    from controlplane.accounts.admin import reset_password as reset

    with ctx.database().transaction() as db:
        done = reset(db, CLI_ACTOR, username, reset_mfa=reset_mfa)
    click.echo(f"{username}: password reset" + (", authenticator removed" if reset_mfa else ""))
    _print_password(username, done.one_time_password)
