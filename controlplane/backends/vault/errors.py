"""How hvac and requests failures become the control plane's BackendErrors."""

from __future__ import annotations

import re

import hvac.exceptions
import requests

from controlplane.errors import (
    BackendError,
    BackendNotFound,
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)

BACKEND = "vault"
HINT_START = "start it: scripts/devvault up"

# Vault wraps error lists as "1 error occurred:\n\t* permission denied\n\n".
_MULTIERROR = re.compile(r"^\d+ errors? occurred:$")
# Transit reports a missing key or version as a 400 or 500 with one of these messages.
_NOT_FOUND = re.compile(r"not (?:be )?found|no existing key|no such key")


def translate(exc: Exception, action: str, *, addr: str) -> BackendError:
    """The BackendError for an hvac/requests failure while trying to `action` at `addr`."""
    if isinstance(exc, requests.RequestException):
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return PermanentError(f"vault_addr {addr!r} is not a URL", backend=BACKEND)
        return TemporaryError(
            f"vault at {addr} did not answer while trying to {action}: "
            f"{connection_problem(exc)}",
            backend=BACKEND,
            hint=HINT_START,
        )
    assert isinstance(exc, hvac.exceptions.VaultError)
    message = f"vault refused to {action}: {server_message(exc)}"
    if isinstance(exc, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
        return BackendPermissionDenied(message, backend=BACKEND)
    if isinstance(exc, hvac.exceptions.InvalidPath):
        return BackendNotFound(f"not found in vault: could not {action}", backend=BACKEND)
    if is_not_found(server_message(exc)):
        return BackendNotFound(message, backend=BACKEND)
    if isinstance(
        exc,
        hvac.exceptions.InternalServerError
        | hvac.exceptions.VaultDown
        | hvac.exceptions.BadGateway
        | hvac.exceptions.VaultNotInitialized
        | hvac.exceptions.RateLimitExceeded
        | hvac.exceptions.UnexpectedError,
    ):
        hint = "unseal it (bao operator unseal)" if "sealed" in message else ""
        return TemporaryError(message, backend=BACKEND, hint=hint)
    if "exceeded maximum number of strings" in message:
        return PermanentError(
            message,
            backend=BACKEND,
            hint="lower sign_batch_size or raise the listener's max_request_json_strings",
        )
    return PermanentError(message, backend=BACKEND)


def item_error(error: str, action: str) -> BackendError:
    """The BackendError for one failed item of a batch answer (which itself succeeded)."""
    message = f"vault refused to {action}: {error}"
    if "higher than the latest key version" in error or is_not_found(error):
        return BackendNotFound(message, backend=BACKEND)
    if "permission denied" in error:
        return BackendPermissionDenied(message, backend=BACKEND)
    return PermanentError(message, backend=BACKEND)


def is_not_found(message: str) -> bool:
    return _NOT_FOUND.search(message) is not None


def server_message(exc: hvac.exceptions.VaultError) -> str:
    errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
    lines = (line.strip().removeprefix("* ") for e in errors for line in str(e).splitlines())
    text = "; ".join(line for line in lines if line and not _MULTIERROR.match(line))
    return text or f"HTTP error ({type(exc).__name__})"


def connection_problem(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return type(exc).__name__
