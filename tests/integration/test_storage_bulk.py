"""insert_rows: COPY on PostgreSQL stores what an INSERT stores, inside the transaction, same errors."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from controlplane.documents.models import Document
from controlplane.storage import Database, as_utc
from controlplane.storage.bulk import insert_rows


def row(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "serial": secrets.token_hex(16), "org": "health", "doc_type": "degree",
        "title": 'Tab\there, "quotes", back\\slash, newline\nand عربي', "recipient": "Ahmed Karim",
        "sha256": secrets.token_hex(32), "issued_at": datetime(2026, 11, 29, 10, 5, 7, tzinfo=UTC),
        "expires_at": None, "key_name": "tenant-health-signing", "key_version": 3, "token": "T" * 180,
        "status": "valid", "status_reason": "", "status_changed_at": None, "superseded_by": None,
        "import_ref": None,
    }
    values.update(changes)
    return values


def stored(database: Database, serials: list[str]) -> list[tuple[Any, ...]]:
    with database.transaction() as s:
        found = s.execute(select(Document).where(Document.serial.in_(serials))).scalars().all()
        values = [(d.serial, d.title, as_utc(d.issued_at), d.expires_at and as_utc(d.expires_at),
                   d.key_version, d.import_ref, d.superseded_by) for d in found]
    return sorted(values, key=repr)


def test_the_rows_read_back_as_an_insert_would_store_them(database: Database) -> None:
    copied = [row(), row(expires_at=datetime(2030, 1, 1, tzinfo=UTC), import_ref="old-42"), row()]
    inserted = [{**r, "serial": secrets.token_hex(16), "org": "finance"} for r in copied]  # (org, import_ref)
    with database.transaction() as s:
        insert_rows(s, Document, copied)
        s.execute(insert(Document), inserted)
    via_copy = stored(database, [r["serial"] for r in copied])
    via_insert = stored(database, [r["serial"] for r in inserted])
    assert len(via_copy) == 3
    # The same values, row for row, whichever way they went in (serials and orgs aside).
    assert sorted((v[1:] for v in via_copy), key=repr) == sorted((v[1:] for v in via_insert), key=repr)


def test_a_constraint_violation_is_sqlalchemys_error_and_nothing_is_written(database: Database) -> None:
    first = row(import_ref="legacy-1")
    with database.transaction() as s:
        insert_rows(s, Document, [first])
    again = [row(), row(import_ref="legacy-1")]  # the second breaks (org, import_ref) uniqueness
    with pytest.raises(IntegrityError), database.transaction() as s:
        s.execute(insert(Document), [row(import_ref="written-before-in-this-transaction")])
        insert_rows(s, Document, again)
    with database.transaction() as s:
        refs = set(s.scalars(select(Document.import_ref)))
        count = len(s.scalars(select(Document.serial)).all())
    assert refs == {"legacy-1"} and count == 1  # the whole transaction rolled back


def test_unknown_columns_are_refused_before_anything_is_sent(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes the INSERT path, whose own error names the column")
    with pytest.raises(ValueError, match="no column"), database.transaction() as s:
        insert_rows(s, Document, [{**row(), "colour": "red"}])
