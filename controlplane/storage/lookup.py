"""PointLookup: one SELECT by key on bare driver connections, for the public verification hot path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select
from sqlalchemy.pool import PoolProxiedConnection

from controlplane.errors import ControlPlaneError
from controlplane.storage.lookup_libpq import Fallback, LibpqStatement

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

log = logging.getLogger(__name__)

# Idle connections kept beyond this many are closed: the pool's own limit (size + overflow) bounds
# how many are open at once, this bounds how many stay open after a burst.
MAX_IDLE = 8


class LookupUnavailable(ControlPlaneError):
    """The database could not answer a point read, even on a fresh connection."""

    status = 503
    title = "Database unavailable"


class PointLookup:
    """Runs one compiled SELECT with the caller's key and returns the first row as a plain tuple.

    Why not a Session or even Core's Connection: on a 1M-row registry the public verification read
    costs 0.30 ms of client CPU through Core (pool checkout and reset, compiled-cache lookup, result
    processors) against 0.09 ms on the driver's cursor. So this keeps driver connections checked out
    of its own pool in a LIFO, in autocommit (no BEGIN/ROLLBACK round trips), with one reusable
    cursor each; psycopg prepares the statement on the server after a few executions.

    Columns come back as the driver gives them: select strings and integers only (SQLite would hand
    back text for a DateTime). A connection the server dropped surfaces on the next execute; it is
    thrown away and the read retried once on a new one, then LookupUnavailable (503) is raised.
    """

    def __init__(self, engine: Engine, pool: Pool, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement  # kept alive: Database.point_lookup keys lookups by its id()
        self._dialect = engine.dialect
        self._pool = pool
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self._positional = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._libpq = _libpq_statement(engine, statement, self.sql)
        self._idle: list[_Held] = []
        self._lock = threading.Lock()
        self._closed = False
        self.reconnects = 0  # connections found dead and replaced (for tests and logs)
        # Fault injection for tests only: called with the driver connection before each execute.
        self.before_execute: list[Callable[[Any], None]] = []

    def first(self, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        for attempt in (1, 2):
            held = self._checkout()
            try:
                for hook in self.before_execute:
                    hook(held.fairy.driver_connection)
                row = self._run(held, params)
            except self._dialect.loaded_dbapi.Error as exc:
                dropped = self._dialect.is_disconnect(exc, held.fairy.dbapi_connection, held.cursor)
                self._discard(held)
                if dropped and attempt == 1:
                    self.reconnects += 1
                    log.info("point lookup: connection dropped by the server; retrying on a new one")
                    continue
                log.warning("point lookup failed: %s", type(exc).__name__)
                raise LookupUnavailable(
                    "the document registry cannot be read right now; try again in a minute"
                ) from exc
            self._checkin(held)
            return row
        raise AssertionError("unreachable")

    def _run(self, held: _Held, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        if self._libpq is not None and held.prepared is not False:
            driver = held.fairy.driver_connection
            try:
                if held.prepared is None:
                    self._libpq.prepare(driver)
                    held.prepared = True
                return self._libpq.first(driver, params)
            except (Fallback, self._dialect.loaded_dbapi.Error):
                if held.prepared is None:
                    held.prepared = False  # this connection cannot prepare: the cursor from now on
        # The cursor path: SQLite, and any call the shortcut could not answer. A dead connection
        # raises here, with the driver's own exception for first() to classify.
        args: Any = params if self._positional is None else tuple(params[k] for k in self._positional)
        held.cursor.execute(self.sql, args)
        row = held.cursor.fetchone()
        return tuple(row) if row is not None else None

    def close(self) -> None:
        """Close every idle connection; ones in use are closed when they come back."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, []
        for held in idle:
            self._discard(held)

    def _checkout(self) -> _Held:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            fairy = self._pool.connect()
        except self._dialect.loaded_dbapi.Error as exc:
            raise LookupUnavailable("the document registry cannot be reached right now") from exc
        # Held for many reads, so set on the driver connection itself; never returned to the
        # pool in this state (closing invalidates it).
        driver = fairy.dbapi_connection
        assert driver is not None  # a fresh checkout always has one
        self._dialect.set_isolation_level(driver, "AUTOCOMMIT")
        return _Held(fairy, driver.cursor())

    def _checkin(self, held: _Held) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(held)
                return
        self._discard(held)

    @staticmethod
    def _discard(held: _Held) -> None:
        try:
            held.cursor.close()
        except Exception:  # a dead connection's cursor may fail to close; it is dropped anyway
            log.debug("closing a point-lookup cursor failed", exc_info=True)
        held.fairy.invalidate()  # closes the driver connection instead of pooling an autocommit one


class _Held:
    """A checked-out driver connection, its reusable cursor, and whether the libpq shortcut's
    statement is prepared on it (None: not tried yet; False: it could not be)."""

    __slots__ = ("cursor", "fairy", "prepared")

    def __init__(self, fairy: PoolProxiedConnection, cursor: Any) -> None:
        self.fairy, self.cursor = fairy, cursor
        self.prepared: bool | None = None


def _libpq_statement(engine: Engine, statement: Select[*tuple[Any, ...]], sql: str) -> LibpqStatement | None:
    if engine.dialect.driver != "psycopg":
        return None
    try:
        types = [column.type.python_type for column in statement.selected_columns]
    except NotImplementedError:  # a column type without a Python type: the cursor path only
        return None
    return LibpqStatement.from_pyformat(sql, types)
