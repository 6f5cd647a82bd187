"""Upgrading an empty database yields exactly the models (on SQLite locally, PostgreSQL in CI)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from controlplane.migrations import all_metadata, current_revision, head_revision, upgrade_database
from controlplane.storage import Database


def test_upgrade_of_an_empty_database_matches_the_models(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert inspect(db.engine).get_table_names() == []
        upgrade_database(db)
        assert current_revision(db) == head_revision(db)
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    all_metadata())
        assert diff == [], f"migrations and models differ: {diff}"
        tables = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set(all_metadata().tables)
        # a second upgrade is a no-op
        upgrade_database(db)
        assert current_revision(db) == head_revision(db)
    finally:
        db.dispose()


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        db.dispose()
