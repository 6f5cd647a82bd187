"""The one error tree: every error knows its HTTP status and a message a person understands."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Root of every error the control plane raises on purpose."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.title, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body


class InvalidInput(ControlPlaneError):
    """The caller sent something we refuse; nothing was changed."""

    status = 400
    title = "Invalid input"


class InvalidSettings(ControlPlaneError):
    """Settings failed validation; `problems` lists every one, not just the first."""

    status = 500
    title = "Invalid settings"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid settings ({len(self.problems)} problem(s)):\n{lines}")


class NotAuthenticated(ControlPlaneError):
    status = 401
    title = "Not authenticated"


class PermissionDenied(ControlPlaneError):
    status = 403
    title = "Permission denied"


class NotFound(ControlPlaneError):
    status = 404
    title = "Not found"


class Conflict(ControlPlaneError):
    status = 409
    title = "Conflict"


class ServiceUnavailable(ControlPlaneError):
    """A part of this process (its backends, signer, verifier) cannot be used now or is not held by
    this role; the message says which and why, and nothing was changed."""

    status = 503
    title = "Service unavailable"


class BackendError(ControlPlaneError):
    """A backend (OpenStack, Vault, Ansible) failed. Adapters raise only the two subclasses."""

    status = 502
    title = "Backend error"

    def __init__(self, message: str, *, backend: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.backend = backend


class TemporaryError(BackendError):
    """Worth retrying after `delay` seconds: timeouts, 5xx, connection refused, conflicts in flight."""

    status = 503
    title = "Backend temporarily unavailable"

    def __init__(
        self, message: str, *, backend: str, delay: float = 5.0, hint: str | None = None
    ) -> None:
        super().__init__(message, backend=backend, hint=hint)
        self.delay = delay


class PermanentError(BackendError):
    """Retrying will not help: bad request, missing permission, invalid configuration."""

    title = "Backend refused the request"


class BackendPermissionDenied(PermanentError):
    """The backend itself (Keystone policy, a Vault ACL) said 403: proof the boundary holds there."""

    status = 403
    title = "Permission denied by backend"


class BackendNotFound(PermanentError):
    """The backend has no such object."""

    status = 404
    title = "Not found in backend"
