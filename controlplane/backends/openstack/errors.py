"""Turn openstacksdk / keystoneauth exceptions into the control plane's backend errors.

`translate_error` is pure (it only reads the exception), so it is unit-tested by building
the SDK exception objects directly. `translated` is the context manager every adapter call
runs inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from controlplane.errors import (
    BackendError,
    BackendNotFound,
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)

BACKEND = "openstack"
HINT_START = "is the cloud up? start it: scripts/devcloud up (check: scripts/devcloud status)"
HINT_CREDENTIALS = "check the credentials of this cloud in clouds.yaml (auth section)"
HINT_QUOTA = "raise the project's quota or free resources, then retry"

#: The exception types `translated` converts; anything else is a bug and propagates as is.
TRANSLATED_TYPES: tuple[type[BaseException], ...] = (
    sdk_exc.SDKException,
    ksa_exc.ClientException,
    requests.RequestException,
)

# "Quota exceeded for cores" (Nova), "Quota exceeded for resources" (Neutron),
# "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded" (Cinder).
# Not just "quota": a policy refusal names the rule, e.g. "… update_quota to be performed".
_QUOTA_WORDS = re.compile(
    r"quota exceeded|over ?quota|limit ?exceeded|maximum number of .* exceeded", re.IGNORECASE
)
_CONNECTION_WORDS = re.compile(
    r"unable to establish connection|connection refused|timed out|max retries", re.IGNORECASE
)


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, sdk_exc.HttpException):
        return exc.status_code
    if isinstance(exc, ksa_exc.HttpError):
        return exc.http_status or None
    return None


_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_URL_PREFIX = re.compile(r"^(Unable to establish connection to \S+?)(:? HTTP\w*ConnectionPool.*)$")


def _details_of(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    text = " ".join((str(details) if details else str(exc)).split())
    # keystoneauth repeats urllib3's whole retry story; keep the URL and the OS error.
    long_form = _URL_PREFIX.match(text)
    if long_form:
        errno = _ERRNO.search(text)
        text = long_form.group(1) + (f": {errno.group(0)}" if errno else "")
    # Server messages are one sentence in practice; keep log lines and API bodies short.
    return text[:500]


def _retry_after(exc: BaseException, default: float) -> float:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(float(raw), 0.0) if raw is not None else default
    except (TypeError, ValueError):
        return default


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_problem(exc: BaseException) -> bool:
    for link in _chain(exc):
        if isinstance(link, ksa_exc.SSLError | requests.exceptions.SSLError):
            return False
        if isinstance(
            link,
            ksa_exc.ConnectionError | requests.ConnectionError | requests.Timeout | TimeoutError,
        ):
            return True
    return bool(_CONNECTION_WORDS.search(str(exc)))


def _from_status(status: int, exc: BaseException, action: str) -> BackendError:
    details = _details_of(exc)
    message = f"{action}: HTTP {status}: {details}"
    if status == 401:
        return PermanentError(
            f"{action}: authentication failed (HTTP 401): {details}",
            backend=BACKEND,
            hint=HINT_CREDENTIALS,
        )
    if status in (403, 409, 413) and _QUOTA_WORDS.search(details):
        # Nova says 403, Neutron 409, Cinder 413 for "over quota": retrying will not help.
        return PermanentError(message, backend=BACKEND, hint=HINT_QUOTA)
    if status == 403:
        return BackendPermissionDenied(
            message, backend=BACKEND, hint="the cloud's policy refuses this to the caller"
        )
    if status == 404:
        return BackendNotFound(message, backend=BACKEND)
    if status in (409, 412):
        # A conflict in flight (a concurrent create, an object still in use, a stale revision).
        return TemporaryError(message, backend=BACKEND, delay=2.0)
    if status in (408, 429) or status >= 500:
        return TemporaryError(
            message, backend=BACKEND, delay=_retry_after(exc, 5.0), hint=HINT_START
        )
    return PermanentError(message, backend=BACKEND)


def translate_error(exc: BaseException, *, action: str) -> BackendError:
    """The backend error that stands for `exc`, raised while doing `action` (e.g. "create network").

    Never includes request headers or bodies, so tokens and passwords cannot leak into messages.
    """
    if isinstance(exc, BackendError):
        return exc
    status = _status_of(exc)
    if status is not None:
        return _from_status(status, exc, action)
    if isinstance(exc, ksa_exc.SSLError | requests.exceptions.SSLError):
        return PermanentError(
            f"{action}: TLS error: {_details_of(exc)}",
            backend=BACKEND,
            hint="check 'cacert'/'verify' of this cloud in clouds.yaml",
        )
    if isinstance(exc, ksa_exc.ConnectionError | requests.ConnectionError | requests.Timeout):
        return TemporaryError(
            f"{action}: cannot reach the cloud: {_details_of(exc)}", backend=BACKEND, hint=HINT_START
        )
    if isinstance(exc, ksa_exc.DiscoveryFailure):
        if _is_connection_problem(exc):
            return TemporaryError(
                f"{action}: cannot reach the identity service: {_details_of(exc)}",
                backend=BACKEND,
                hint=HINT_START,
            )
        return PermanentError(
            f"{action}: version discovery failed: {_details_of(exc)}",
            backend=BACKEND,
            hint="check auth_url of this cloud in clouds.yaml (it should end in /v3)",
        )
    if isinstance(exc, ksa_exc.EndpointNotFound | sdk_exc.EndpointNotFound):
        return PermanentError(
            f"{action}: the service is not in the cloud's catalog: {_details_of(exc)}",
            backend=BACKEND,
            hint="register the service endpoint in Keystone, or check region_name/interface",
        )
    if isinstance(exc, ksa_exc.AuthPluginException | ksa_exc.AuthorizationFailure):
        return PermanentError(
            f"{action}: cannot authenticate: {_details_of(exc)}",
            backend=BACKEND,
            hint=HINT_CREDENTIALS,
        )
    if isinstance(exc, sdk_exc.ConfigException):
        return PermanentError(
            f"{action}: invalid cloud configuration: {_details_of(exc)}",
            backend=BACKEND,
            hint="check clouds.yaml and the cloud name (settings os_cloud / OS_CLOUD)",
        )
    if isinstance(exc, sdk_exc.ResourceTimeout):
        return TemporaryError(f"{action}: timed out: {_details_of(exc)}", backend=BACKEND)
    if isinstance(exc, sdk_exc.ResourceFailure):
        return PermanentError(f"{action}: the cloud reported a failure: {_details_of(exc)}",
                              backend=BACKEND)
    if _is_connection_problem(exc):
        return TemporaryError(
            f"{action}: cannot reach the cloud: {_details_of(exc)}", backend=BACKEND, hint=HINT_START
        )
    return PermanentError(f"{action}: {type(exc).__name__}: {_details_of(exc)}", backend=BACKEND)


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run a block of SDK calls; re-raise SDK/keystoneauth errors as backend errors."""
    try:
        yield
    except TRANSLATED_TYPES as exc:
        raise translate_error(exc, action=action) from exc


def raise_for_response(response: requests.Response, *, action: str) -> None:
    """For raw proxy calls (which do not raise): turn a >= 400 response into a backend error."""
    try:
        sdk_exc.raise_from_response(response)
    except sdk_exc.HttpException as exc:
        raise translate_error(exc, action=action) from exc
