"""The public verification service's own database credential (issue 12 item 1): on PostgreSQL a role
that reads what verification reads and writes only the verification counts; on SQLite a read-only
connection and a counts file of its own. Made by the worker, which deploys the service."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url

from controlplane.errors import InvalidSettings
from controlplane.settings import Settings
from controlplane.storage import Database

# What the verification role reads (documents.verification, documents.publication, web.public.verify_views,
# doctor.check_database): the registry, the archived public keys, the published trust lists and the
# schema revision; of the tenants only the slug and the English name (the issuer on the page).
VERIFIER_READS = ("documents", "signing_public_keys", "published_trust_lists", "alembic_version")
VERIFIER_READ_COLUMNS = {"tenants": ("slug", "name_en")}
# ...and the only table it writes (INSERT ... ON CONFLICT DO UPDATE: SELECT, INSERT and UPDATE).
VERIFIER_COUNTS = "document_verification_counts"
PASSWORD_FILE = "verifier-db-password"  # noqa: S105  # a file name; in the worker's instance folder, 0600
COUNTS_FILE = "verification-counts.db"  # SQLite: in the service's own directory
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class VerifierDatabase:
    """What the verification service connects with. `counts_url` empty: counts go to `url`."""

    url: str
    counts_url: str = ""


def is_postgresql(settings: Settings) -> bool:
    return settings.effective_database_url.startswith("postgresql")


def verifier_role_name(settings: Settings) -> str:
    """`verification_db_user`, or `<database>_verify`: roles are cluster-wide, databases are not."""
    name = settings.verification_db_user or f"{make_url(settings.effective_database_url).database}_verify"
    name = name.lower().replace("-", "_")
    if not _ROLE.match(name):
        raise InvalidSettings([f"verification_db_user: {name!r} is not a plain PostgreSQL role name"])
    return name


def verifier_password(settings: Settings) -> str:
    """The verifier role's password: generated once, kept 0600 where only the worker reads it."""
    path = Path(settings.instance_path) / PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: two workers starting together must not each write a different password
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password)
    return password


def verifier_database(settings: Settings, service_dir: Path) -> VerifierDatabase:
    """The service's database settings: never the control plane's own read-write credential."""
    url = settings.effective_database_url
    if is_postgresql(settings):
        own = make_url(url).set(username=verifier_role_name(settings), password=verifier_password(settings))
        return VerifierDatabase(own.render_as_string(hide_password=False))
    path = Path(make_url(url).database or "").resolve()
    # mode=ro: SQLite itself refuses every write on this connection; the counts go to a file of its own.
    return VerifierDatabase(
        url=f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true",
        counts_url=f"sqlite:///{service_dir / COUNTS_FILE}",
    )


def grant_verifier(db: Database, settings: Settings) -> str | None:
    """Create or update the verifier's PostgreSQL role (LOGIN, its password, exactly its grants) and
    return its name; on SQLite there is nothing to grant (None). Idempotent; needs CREATEROLE (or run
    `controlplane db grant-verifier` once as the database's administrator)."""
    if db.engine.dialect.name != "postgresql":
        return None
    role = verifier_role_name(settings)
    password = verifier_password(settings).replace("'", "''")
    with db.engine.begin() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        verb = "ALTER" if exists else "CREATE"
        conn.execute(text(
            f"{verb} ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
            f"NOREPLICATION NOBYPASSRLS PASSWORD '{password}'"
        ))
        # Start from nothing, so a table dropped from the lists loses its grant too.
        conn.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"'))
        conn.execute(text(f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        for table in VERIFIER_READS:
            conn.execute(text(f'GRANT SELECT ON "{table}" TO "{role}"'))
        for table, columns in VERIFIER_READ_COLUMNS.items():
            listed = ", ".join(f'"{c}"' for c in columns)
            conn.execute(text(f'GRANT SELECT ({listed}) ON "{table}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE ON "{VERIFIER_COUNTS}" TO "{role}"'))
    return role


def drop_verifier(db: Database, settings: Settings) -> None:
    """Remove the verifier's role (its grants first); nothing on SQLite."""
    if db.engine.dialect.name != "postgresql":
        return
    role = verifier_role_name(settings)
    with db.engine.begin() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
