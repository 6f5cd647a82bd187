"""Process-tree cleanup: find every process of a run by its environment marker and kill it."""

from __future__ import annotations

import os
import signal
import threading
import time

from controlplane.backends.stopping import stopping

RUN_MARKER_ENV = "CONTROLPLANE_ANSIBLE_RUN"


class Stopper:
    """The runner's cancel callback: stop on cancel() or at the deadline, killing the run first."""

    def __init__(self, cancel: threading.Event, deadline: float, marker: str) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self.marker = marker
        self.timed_out = False
        self.killed = 0

    def __call__(self) -> bool:
        if stopping():  # the worker is stopping (SIGTERM): no run outlives it
            self.cancel.set()
        if not self.cancel.is_set() and time.monotonic() < self.deadline:
            return False
        self.timed_out = not self.cancel.is_set()
        self.killed += kill_marked(self.marker)
        return True


def marked_processes(marker: str) -> list[int]:
    """PIDs whose environment carries RUN_MARKER_ENV=marker (our own user's processes only)."""
    needle = f"{RUN_MARKER_ENV}={marker}".encode()
    own = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone meanwhile, or another user's
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def kill_marked(marker: str, *, rounds: int = 5) -> int:
    """SIGKILL every process of the run, again until none is left (a dying parent may fork)."""
    killed = 0
    for _ in range(rounds):
        pids = marked_processes(marker)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.05)
    return killed
