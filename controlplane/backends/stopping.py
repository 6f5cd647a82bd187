"""Process shutdown: one event that SIGTERM sets and that retries, backoff sleeps and automation runs
give way to, so a worker stops within seconds even while a backend is down (issue 12 item 4)."""

from __future__ import annotations

import threading

from controlplane.errors import TemporaryError

_STOP = threading.Event()


class ShuttingDown(TemporaryError):
    """The process is stopping: the work in hand is left for the next pass (or the next worker)."""

    def __init__(self) -> None:
        super().__init__("the worker is stopping", backend="controlplane", delay=0.0)


def request_stop() -> None:
    """From the signal handler: every `sleep` returns at once, raising, and runs are cancelled."""
    _STOP.set()


def stopping() -> bool:
    return _STOP.is_set()


def sleep(seconds: float) -> None:
    """A backoff sleep that ends early, raising ShuttingDown, when the process is stopping."""
    if _STOP.wait(seconds):
        raise ShuttingDown


def stop_event() -> threading.Event:
    """The event itself, for a loop on its own thread that waits between rounds (the sequencer)."""
    return _STOP


def reset() -> None:
    """For tests and for a process that keeps running after a stop (none in production)."""
    _STOP.clear()
