"""The process's services, built once in create_app and reached through `services()`: settings,
database, backends (built on first use), the document signer, the MFA cipher, the verifier and
what to close at shutdown. A part that cannot be had raises ServiceUnavailable (503)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

from controlplane.errors import ControlPlaneError, ServiceUnavailable
from controlplane.settings import Settings
from controlplane.storage import Database

if TYPE_CHECKING:  # types only: web.public imports this module, and no accounts, signer or Vault code
    from controlplane.accounts.mfa import SecretBox
    from controlplane.backends import Backends
    from controlplane.backends.health import HealthCheck
    from controlplane.backends.keys import KeyBackend
    from controlplane.documents.signer import OrgSigner
    from controlplane.web.public.verify_views import VerificationState

EXTENSION = "controlplane"


@dataclass
class Services:
    """Everything a request may need from its process. Backends, signer and MFA cipher are built on
    first use (create_app passes their factories), so the app starts while OpenStack or Vault is
    down and says so on /readyz; the verifier is installed by web.public at start-up."""

    settings: Settings
    database: Database
    backends_factory: Callable[[], Backends]
    signer_factory: Callable[[KeyBackend, Database], OrgSigner]
    mfa_box_factory: Callable[[], SecretBox]
    # Background work to stop at shutdown, called newest first (close_app).
    closers: list[Callable[[], None]] = field(default_factory=list)
    built_backends: Backends | None = None
    built_signer: OrgSigner | None = None
    built_mfa_box: SecretBox | None = None
    installed_verifier: VerificationState | None = None
    health: tuple[float, list[HealthCheck]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    health_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def backends(self) -> Backends:
        """The cloud, keys and automation adapters this role holds; a configuration or connection
        problem is a 503 with the adapter's own message (tried again on the next call)."""
        if self.built_backends is None:
            with self._lock:
                if self.built_backends is None:
                    try:
                        self.built_backends = self.backends_factory()
                    except ControlPlaneError as exc:
                        raise ServiceUnavailable(exc.message, hint=exc.hint) from exc
        return self.built_backends

    @property
    def signer(self) -> OrgSigner:
        """One OrgSigner per process: it caches each organisation's Vault identity across requests."""
        if self.built_signer is None:
            keys = self.backends.keys
            with self._lock:
                if self.built_signer is None:
                    self.built_signer = self.signer_factory(keys, self.database)
                    # At shutdown its Vault identities go, their secret_ids destroyed.
                    self.closers.append(self.built_signer.close)
        return self.built_signer

    def forget_signing_key(self, org: str) -> None:
        """After a rotation: this process signs the org's next document with the new version at once
        (other processes reread the key within signer.KEY_MAX_AGE)."""
        if self.built_signer is not None:
            self.built_signer.forget(org)

    @property
    def mfa_box(self) -> SecretBox:
        """The cipher of stored TOTP secrets, keyed by the MFA key file."""
        if self.built_mfa_box is None:
            with self._lock:
                if self.built_mfa_box is None:
                    self.built_mfa_box = self.mfa_box_factory()
        return self.built_mfa_box

    @property
    def verifier(self) -> VerificationState:
        """Rate limiter, counts and key cache of public verification (web.public installs it)."""
        if self.installed_verifier is None:
            raise ServiceUnavailable("document verification is not set up in this process")
        return self.installed_verifier

    def cached_health(self, max_age: float) -> list[HealthCheck] | None:
        with self.health_lock:
            if self.health is not None and time.monotonic() - self.health[0] < max_age:
                return list(self.health[1])
        return None

    def remember_health(self, checks: list[HealthCheck]) -> None:
        with self.health_lock:
            self.health = (time.monotonic(), list(checks))


def install(app: Flask, built: Services) -> None:
    app.extensions[EXTENSION] = built


def services_of(app: Flask) -> Services:
    """The app's services, for start-up code and tests that hold the app rather than a request."""
    return cast(Services, app.extensions[EXTENSION])


def services() -> Services:
    """The current app's services: the one way a view reaches settings, database, backends and the rest."""
    return services_of(current_app)
