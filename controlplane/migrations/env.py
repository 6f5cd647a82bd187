"""Alembic environment: runs migrations on the engine handed over by controlplane.migrations."""

from __future__ import annotations

from alembic import context

from controlplane.migrations import all_metadata

config = context.config
engine = config.attributes["engine"]
target_metadata = all_metadata()

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER constraints
        compare_type=True,
    )
    context.run_migrations()
