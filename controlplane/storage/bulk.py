"""insert_rows: many new rows in the session's transaction, by COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, insert, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def insert_rows(session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, named as the model table's columns) in the session's
    transaction: atomic with everything else it writes, and checked by the same constraints.

    Why COPY: issuing 1,000 documents writes 1,000 registry rows of 16 columns; a multi-row
    INSERT binds 16,000 parameters and costs the database more than the signing. COPY FROM STDIN
    streams them instead. Values are given as the driver adapts them (datetimes, None as NULL),
    so the rows mean exactly what the INSERT would have stored. Other databases (SQLite) take an
    executemany INSERT. A driver error leaves as SQLAlchemy's DBAPIError (IntegrityError and so
    on), as the INSERT's would."""
    if not rows:
        return
    table: Table = inspect(model).local_table
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        session.execute(insert(table), list(rows))
        return
    names = list(rows[0])
    unknown = set(names) - set(table.columns.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(name) for name in names)
    statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None  # a live connection inside a transaction
    # COPY goes past the session: write its pending objects first, as session.execute() would
    # (autoflush), so rows that refer to them find them and statements keep their order.
    session.flush()
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc
