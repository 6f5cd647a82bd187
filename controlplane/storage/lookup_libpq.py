"""PointLookup's shortcut on psycopg connections: its SELECT prepared once per connection, run via libpq."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from psycopg import pq

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_names = itertools.count(1)


class Fallback(Exception):
    """The shortcut cannot answer this call (an error result, a dropped connection): take the
    cursor path, which raises the driver's own exception for the caller to classify."""


class LibpqStatement:
    """Why: psycopg's Cursor spends 0.08 ms of Python per execute (query conversion, prepare
    bookkeeping, result loaders) against 0.05 ms for PQexecPrepared on the same connection, and
    libpq lets go of the GIL while it waits, like the cursor does. Results come back as text and
    are converted by the selected columns' Python types; only str and int are supported, which
    is what a point lookup on the registry selects. Errors never surface here: see Fallback."""

    def __init__(self, sql: str, names_in_order: Sequence[str], converters: Sequence[Callable[[bytes], Any]]):
        self.name = f"cp_lookup_{next(_names)}".encode()
        self.sql = sql.encode()
        self.names = tuple(names_in_order)
        self.converters = tuple(converters)
        self._columns = tuple(enumerate(self.converters))

    @classmethod
    def from_pyformat(cls, sql: str, python_types: Sequence[type]) -> LibpqStatement | None:
        """From psycopg's %(name)s SQL; None when a placeholder repeats, a literal % appears or a
        column is neither str nor int (then the cursor path serves every call)."""
        names = _PLACEHOLDER.findall(sql)
        if len(set(names)) != len(names) or "%" in _PLACEHOLDER.sub("", sql):
            return None
        converters: list[Callable[[bytes], Any]] = []
        for kind in python_types:
            if kind is str:
                converters.append(bytes.decode)
            elif kind is int:
                converters.append(int)
            else:
                return None
        numbered = iter(range(1, len(names) + 1))
        return cls(_PLACEHOLDER.sub(lambda _m: f"${next(numbered)}", sql), names, converters)

    def prepare(self, driver_connection: Any) -> None:
        pgconn = driver_connection.pgconn
        if pgconn.parameter_status(b"client_encoding") != b"UTF8":
            raise Fallback("text results are decoded as UTF-8")
        result = pgconn.prepare(self.name, self.sql, None)
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise Fallback("the statement could not be prepared")

    def first(self, driver_connection: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        values = [None if (v := params[name]) is None else str(v).encode() for name in self.names]
        result = driver_connection.pgconn.exec_prepared(self.name, values)
        if result.status != pq.ExecStatus.TUPLES_OK:
            raise Fallback("the prepared lookup failed")
        if result.ntuples == 0:
            return None
        get = result.get_value  # a list, not a generator: one frame per row instead of one per column
        return tuple([None if (raw := get(0, j)) is None else convert(raw) for j, convert in self._columns])
