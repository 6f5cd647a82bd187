"""The hvac client of one VaultKeys: built lazily, logged in with AppRole when configured, and `_call`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from controlplane.backends.vault.errors import BACKEND, server_message, translate
from controlplane.errors import BackendPermissionDenied, PermanentError

# The package's name, as before it was split into modules, so log lines and filters keep theirs.
logger = logging.getLogger("controlplane.backends.vault")

T = TypeVar("T")
SIGN_BATCH_SIZE = 400  # items per sign request; 499 is the measured maximum without other fields
RELOGIN_MARGIN = 0.1  # log in again when less than this share of the token's TTL is left


class VaultClient:
    """Configuration and connection shared by the areas of VaultKeys. Constructing it does no I/O."""

    def __init__(
        self,
        *,
        addr: str,
        token: str = "",
        role_id: str = "",
        secret_id: str = "",
        transit_mount: str = "transit",
        kv_mount: str = "kv",
        approle_mount: str = "approle",
        timeout: float = 10.0,
        sign_batch_size: int = SIGN_BATCH_SIZE,
    ) -> None:
        if bool(role_id) != bool(secret_id):
            raise PermanentError("AppRole login needs both role_id and secret_id", backend=BACKEND)
        if not 1 <= sign_batch_size <= 499:
            raise PermanentError("sign_batch_size must be between 1 and 499", backend=BACKEND)
        self.addr = addr.rstrip("/")
        self.transit_mount = transit_mount
        self.kv_mount = kv_mount
        self.approle_mount = approle_mount
        self.timeout = timeout
        self.sign_batch_size = sign_batch_size
        self._token = token
        self._role_id = role_id
        self._secret_id = secret_id
        self._client: Any = None  # hvac.Client, built on first use
        self._token_expires_at: float | None = None
        self._token_ttl = 0.0
        self._lock = threading.Lock()
        self._login_lock = threading.Lock()

    def close(self) -> None:
        """Close the keep-alive connections."""
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None
                self._token_expires_at = None  # a new client must log in again

    def _session_client(self) -> Any:
        """The hvac client, not yet logged in (for unauthenticated calls)."""
        with self._lock:
            if self._client is None:
                # Always pass a token: given None, hvac would read VAULT_TOKEN from the environment.
                self._client = hvac.Client(
                    url=self.addr, token=self._token, timeout=self.timeout, session=requests.Session()
                )
            return self._client

    def _connected(self) -> Any:
        """The hvac client, logged in (again) when AppRole credentials are configured."""
        client = self._session_client()
        if self._role_id:
            with self._login_lock:
                if (
                    self._token_expires_at is None
                    or self._token_expires_at - time.monotonic() < self._token_ttl * RELOGIN_MARGIN
                ):
                    self._login(client)
        return client

    def _login(self, client: Any) -> None:
        try:
            response = client.auth.approle.login(
                role_id=self._role_id,
                secret_id=self._secret_id,
                mount_point=self.approle_mount,
                use_token=True,
            )
        except hvac.exceptions.InvalidRequest as exc:
            raise BackendPermissionDenied(
                f"AppRole login at {self.addr} refused: {server_message(exc)}",
                backend=BACKEND,
                hint="issue a new secret_id for the role",
            ) from exc
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise translate(exc, "log in with AppRole", addr=self.addr) from exc
        ttl = float(response["auth"].get("lease_duration") or 0)
        self._token_ttl = ttl
        self._token_expires_at = time.monotonic() + ttl if ttl else float("inf")
        logger.debug("logged in to %s with AppRole (token ttl %ds)", self.addr, ttl)

    def _call(self, action: str, operation: Callable[[Any], T]) -> T:
        """Run one hvac operation; every hvac/requests failure leaves as a BackendError."""
        client = self._connected()
        try:
            return operation(client)
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise translate(exc, action, addr=self.addr) from exc
