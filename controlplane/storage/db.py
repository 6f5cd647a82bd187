"""Engine and session setup: SQLite (foreign keys on, WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Select, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import Pool

from controlplane.errors import ControlPlaneError, InvalidSettings
from controlplane.settings import redact_url
from controlplane.storage.lookup import PointLookup

log = logging.getLogger(__name__)

# Stable constraint names, so Alembic autogenerate and batch mode on SQLite agree across databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; capability packages subclass it in their models.py."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes even for timezone-aware columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class DatabaseUnavailable(ControlPlaneError):
    status = 503
    title = "Database unavailable"


def _normalise_url(url: str) -> str:
    # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _create_private_file(path: Path) -> None:
    """Create a new SQLite file 0600 before SQLite does (it would use the umask, often 0644: the
    whole database, password hashes and sealed secrets included, readable by every local user).
    SQLite gives its -wal and -shm files the database file's mode, so they are 0600 too. An
    existing file is left as its owner set it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build an engine, turning driver and URL problems into one readable error."""
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidSettings([f"database_url: {redact_url(url)!r} cannot be parsed ({exc})"]) from None
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        # A `file:` URI (the verifier's read-only connection) names a database that must exist.
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            _create_private_file(Path(parsed.database))
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise InvalidSettings([f"database_url: {redact_url(url)!r}: {exc}"]) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class _OwnPoolOptionEngine(OptionEngine):
    """An option engine (this engine's dialect, compiled cache and event listeners, so statement
    counters and error hooks see its statements too) over another pool: OptionEngine's own `pool`
    reads and writes the parent's."""

    pool: Pool = None  # type: ignore[assignment]  # shadows the proxying property: a plain attribute


class Database:
    """One engine and its session factory; sessions are short, never open across backend calls."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = _normalise_url(url)
        self.engine = make_engine(self.url, echo=echo)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._reader: Engine | None = None
        self._reader_pool: Pool | None = None  # the reader's own pool, disposed with this Database
        self._reader_lock = threading.Lock()
        self._lookups: dict[int, PointLookup] = {}

    @property
    def reader(self) -> Engine:
        """An AUTOCOMMIT engine without pre-ping for hot single-statement reads (public verification):
        no BEGIN/ROLLBACK and no liveness round trip. Its own pool, so callers must retry once when
        the error says the connection was invalidated (a restarted server)."""
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    if self.engine.dialect.name == "sqlite":  # no server to lose: same pool
                        reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
                    else:
                        # The same pool settings, connect hooks and dialect; only without pre-ping.
                        pool = self._reader_pool = self.engine.pool.recreate()
                        pool._pre_ping = False
                        reader = _OwnPoolOptionEngine(self.engine, {"isolation_level": "AUTOCOMMIT"})
                        reader.pool = pool
                    self._reader = reader
        return self._reader

    def point_lookup(self, statement: Select[*tuple[Any, ...]]) -> PointLookup:
        """The PointLookup of a module-level SELECT, built on first use and kept (by the statement's
        identity) until dispose(); it draws connections from the reader's pool."""
        found = self._lookups.get(id(statement))
        if found is None:
            reader = self.reader  # outside the lock: building the reader takes it too
            with self._reader_lock:
                found = self._lookups.get(id(statement))
                if found is None:
                    found = self._lookups[id(statement)] = PointLookup(reader, reader.pool, statement)
        return found

    @property
    def point_lookups(self) -> tuple[PointLookup, ...]:
        """Every PointLookup built so far (tests hook into them to see what runs)."""
        return tuple(self._lookups.values())

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    def ping(self) -> None:
        """Raise DatabaseUnavailable with a readable reason when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:  # refused, auth failed, unknown database, bad URL option
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(
                f"cannot connect to the database at {self.display_url}: {reason}",
                hint="check CONTROLPLANE_DATABASE_URL and that the server is running",
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: commit on success, roll back on any error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def dispose(self) -> None:
        for lookup in self._lookups.values():
            lookup.close()
        if self._reader_pool is not None:
            self._reader_pool.dispose()
        self.engine.dispose()
