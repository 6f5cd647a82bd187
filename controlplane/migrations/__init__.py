"""Schema migrations (Alembic): upgrade, current revision, and the model registry they compare against."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from controlplane.storage import Base, Database

MIGRATIONS_DIR = Path(__file__).resolve().parent


def all_metadata() -> MetaData:
    """Import every capability's models so Base.metadata holds all tables."""
    # One line per capability that owns tables (imported for their side effect of registering).
    import controlplane.accounts.models
    import controlplane.audit.models
    import controlplane.documents.models
    import controlplane.requests.models
    import controlplane.tenancy.models  # noqa: F401

    return Base.metadata


def alembic_config(database: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation treats % specially; the engine is passed directly anyway.
    cfg.attributes["engine"] = database.engine
    return cfg


def upgrade_database(database: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(database), revision)


def head_revision(database: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database)).get_current_head()


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
