"""A backend this process does not hold (issue 12: the console holds no cloud-admin credential and
runs no playbooks): any call is refused with a sentence saying who does it; health says so too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from controlplane.backends.health import HealthCheck
from controlplane.errors import PermanentError


class NotHeld:
    """Stands in for a port (CloudBackend, AutomationBackend) in a role that must not hold it.

    Constructing it loads no SDK and reads no credential; every method but `check` raises."""

    def __init__(self, backend: str, *, role: str, held_by: str = "the worker") -> None:
        self.backend, self.role, self.held_by = backend, role, held_by

    def check(self) -> list[HealthCheck]:
        detail = f"not held by the {self.role} process: {self.held_by} uses it"
        return [HealthCheck(self.backend, True, detail)]

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        if name.startswith("__"):
            raise AttributeError(name)

        def refused(*_args: Any, **_kwargs: Any) -> NoReturn:
            raise PermanentError(
                f"the {self.role} process holds no {self.backend} credential ({name}): "
                f"{self.held_by} does this",
                backend=self.backend,
                hint="queue the change for the worker, or read what the worker recorded",
            )

        return refused

    def __repr__(self) -> str:
        return f"NotHeld({self.backend!r}, role={self.role!r})"
