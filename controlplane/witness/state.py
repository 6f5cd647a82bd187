"""The witness's memory: per log origin, the latest checkpoint it co-signed, in one JSON file.

Check-and-update is atomic (the tlog-witness spec's race): a process-wide lock plus `flock` on a
lock file, so gunicorn workers or a second witness process on the same directory serialise too.
Writes go to a temporary file that is fsynced, renamed over the old one, then the directory is
fsynced: after a crash the file is the old record or the new one, never a torn mix.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Latest:
    size: int
    root_hash: bytes
    note: str  # the checkpoint note as co-signed: the log's signature and the witness's cosignature

    def as_json(self) -> dict[str, Any]:
        return {"size": self.size, "root": base64.b64encode(self.root_hash).decode(), "note": self.note}


def _latest(raw: Any) -> Latest:
    return Latest(int(raw["size"]), base64.b64decode(raw["root"]), str(raw["note"]))


class WitnessState:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def read(self) -> dict[str, Latest]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {origin: _latest(v) for origin, v in raw.get("logs", {}).items()}

    def get(self, origin: str) -> Latest | None:
        return self.read().get(origin)

    @contextmanager
    def locked(self) -> Iterator[dict[str, Latest]]:
        """The records, held under the lock; write changes back with `write` before leaving."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _LOCK, self.lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self.read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, records: dict[str, Latest]) -> None:
        """Replace the file atomically and durably (call inside `locked`)."""
        data = json.dumps({"logs": {o: r.as_json() for o, r in sorted(records.items())}}, indent=1)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(data + "\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
