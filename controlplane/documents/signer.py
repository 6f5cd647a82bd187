"""OrgSigner: signs for an organisation with a Vault identity that can reach only that org's key,
and only for a live credential of that organisation (documents.callers)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from controlplane.backends.keys import (
    KeyBackend,
    Signature,
    SigningKey,
    signing_key_name,
    tenant_policy_name,
)
from controlplane.documents.callers import CheckedCaller, SigningCaller, check_caller
from controlplane.errors import BackendNotFound, BackendPermissionDenied, ControlPlaneError
from controlplane.storage import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

# A cached identity is replaced after this long (or 90 % of its secret_id's TTL if shorter). The
# adapter logs in again by itself whenever a token nears its TTL (with the same secret_id), so the
# secret_id lives as long as its identity; a replaced or forgotten identity's secret_id is
# destroyed in Vault at once, so at most one per org per process is ever usable.
IDENTITY_MAX_AGE = 12 * 3600.0
# Key metadata (latest version, public keys) is reread after this long: a rotation is picked up
# within seconds, and a burst of single-document issues does not cost a Vault read each.
KEY_MAX_AGE = 10.0


@dataclass
class _Identity:
    backend: KeyBackend
    expires_at: float
    role: str
    secret_accessor: str  # destroyed in Vault once this identity is replaced or forgotten


@dataclass
class _KeyEntry:
    key: SigningKey
    expires_at: float


class OrgSigner:
    """Per-org AppRole identities, made with the control plane's KeyBackend and cached.

    The control plane could sign with any key itself; signing through the org's own AppRole means
    Vault's policy for that org, not only our code, keeps an org to its own key (issue 5).
    Identities are cached per org, but every public call takes a caller and first finds its
    credential live in the database (issue 12): an identity is obtained, and a signature made, only
    for an organisation one of whose own credentials is asking right now.
    """

    def __init__(
        self, keys: KeyBackend, database: Database, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys = keys
        self.database = database
        self._clock = clock
        self._identities: dict[str, _Identity] = {}
        self._key_cache: dict[str, _KeyEntry] = {}
        self._lock = threading.Lock()

    def identity(self, caller: SigningCaller) -> KeyBackend:
        """The caller's organisation's own Vault identity (AppRole `tenant-<org>`), for a caller found
        live now; logged in once and cached per organisation."""
        return self._identity(self._check(caller).org)

    def _check(self, caller: SigningCaller) -> CheckedCaller:
        with self.database.transaction() as session:
            return check_caller(session, caller, caller.org)

    def _identity(self, org: str) -> KeyBackend:
        now = self._clock()
        with self._lock:
            cached = self._identities.get(org)
            if cached is not None and cached.expires_at > now:
                return cached.backend
            role = tenant_policy_name(org)
            try:
                role_id = self.keys.read_role_id(role)
                secret = self.keys.issue_secret_id(role)
            except BackendNotFound:
                raise BackendNotFound(
                    f"organisation {org!r} has no signing identity in Vault (AppRole {role})",
                    backend="vault",
                    hint="apply the organisation's tenant first: it creates the key, policy and AppRole",
                ) from None
            backend = self.keys.login_approle(role_id, secret.value)
            age = IDENTITY_MAX_AGE
            if secret.ttl_seconds > 0:
                age = min(age, secret.ttl_seconds * 0.9)
            self._identities[org] = _Identity(backend, now + age, role, secret.accessor)
        log.info("signing identity for %s ready (AppRole %s)", org, role)
        if cached is not None:
            self._retire(cached)  # outside the lock: other orgs need not wait for this Vault call
        return backend

    def public_keys(self, caller: SigningCaller, *, fresh: bool = False) -> SigningKey:
        """The caller's organisation's signing key as its own identity reads it (latest version and
        public keys), for a caller found live now."""
        org = self._check(caller).org
        now = self._clock()
        entry = self._key_cache.get(org)
        if entry is not None and entry.expires_at > now and not fresh:
            return entry.key
        key = self._with_identity(org, lambda b: b.get_signing_key(signing_key_name(org)))
        self._key_cache[org] = _KeyEntry(key, now + KEY_MAX_AGE)
        return key

    def sign(
        self, caller: SigningCaller, messages: Sequence[bytes], *, key_version: int | None = None
    ) -> tuple[CheckedCaller, list[Signature]]:
        """Sign with the caller's organisation's key through its own identity (one batched call;
        the adapter chunks), after finding the caller live. The organisation is the caller's: there
        is no argument that names another. Returns the caller as checked, for the signature log."""
        checked = self._check(caller)
        name = signing_key_name(checked.org)
        signatures = self._with_identity(
            checked.org, lambda b: b.sign(name, messages, key_version=key_version)
        )
        return checked, signatures

    def forget(self, org: str) -> None:
        """Drop the org's cached identity and key (e.g. after decommission or rotation)."""
        with self._lock:
            cached = self._identities.pop(org, None)
            self._key_cache.pop(org, None)
        if cached is not None:
            self._retire(cached)

    def close(self) -> None:
        """Forget every identity (their secret_ids destroyed): at shutdown, or when done."""
        for org in list(self._identities):
            self.forget(org)

    def __enter__(self) -> OrgSigner:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _retire(self, identity: _Identity) -> None:
        _close(identity.backend)
        try:
            self.keys.destroy_secret_id(identity.role, identity.secret_accessor)
        except ControlPlaneError as exc:
            # Signing must not fail over hygiene: the secret_id still expires with its TTL.
            log.warning("secret_id of AppRole %s not destroyed (it expires by itself): %s",
                        identity.role, exc.message)

    def _with_identity(self, org: str, call: Callable[[KeyBackend], T]) -> T:
        was_cached = org in self._identities
        backend = self._identity(org)
        try:
            return call(backend)
        except BackendPermissionDenied:
            if not was_cached:
                raise
            # A cached secret_id may have been revoked or the role recreated: one fresh login, and
            # if Vault still says no, that answer stands.
            log.info("retrying with a fresh signing identity for %s", org)
            self.forget(org)
            return call(self._identity(org))


def _close(backend: KeyBackend) -> None:
    close = getattr(backend, "close", None)
    if callable(close):
        close()
