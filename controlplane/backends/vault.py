"""VaultKeys: the KeyBackend over OpenBao / Vault through hvac. The only module that imports hvac.

Facts this adapter relies on (measured with OpenBao 2.7.2 and hvac 2.4.0, see recipes/vault-ansible.md):
- the default listener refuses a request with 1,000 JSON strings or more, so a sign batch of n items
  (2 strings each, plus the top-level keys) is cut into chunks of SIGN_BATCH_SIZE;
- transit `read_key` lists ed25519 public keys as base64 of the 32 raw bytes, and stops listing a
  version once `min_decryption_version` passes it: this adapter never raises it;
- a missing transit key is a 400 ("signing key not found", "key not found"), not a 404;
- hvac reads VAULT_TOKEN from the environment when given no token: this adapter always passes one.

Verify-only keys (decommission): transit has no "disable signing" switch (min_encryption_version
cannot pass the latest version), so `make_key_verify_only` (1) sets `deletion_allowed=false` and
(2) adds `deny` rules for the key's sign, rotate, config and trim paths to RETIRED_KEYS_POLICY.
`deny` wins over every grant, and every token the control plane uses or issues carries that policy
(`ensure_approle` adds it; `check()` reports a control-plane token without it), so neither the
tenant nor the control plane can sign with the key again, while `transit/keys/<name>` and
`export/public-key/<name>` stay readable. Only a root token bypasses ACLs. The policy is updated with
check-and-set (OpenBao policy versions), so two decommissions at once do not lose each other's entry.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from controlplane.backends.health import HealthCheck
from controlplane.backends.keys import (
    RETIRED_KEYS_POLICY,
    AppRole,
    KeyBackend,
    Secret,
    SecretId,
    Signature,
    SigningKey,
)
from controlplane.errors import (
    BackendError,
    BackendNotFound,
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
BACKEND = "vault"
HINT_START = "start it: scripts/devvault up"
SIGN_BATCH_SIZE = 400  # items per sign request; 499 is the measured maximum without other fields
CHECK_TIMEOUT = 3.0  # seconds; check() must answer quickly even when Vault does not
RELOGIN_MARGIN = 0.1  # log in again when less than this share of the token's TTL is left
POLICY_CAS_ATTEMPTS = 5

# Key, policy and role names. Transit's own pattern is `\w(([\w-.]+)?\w)?`; no "/" nor globs.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$")
_KV_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_VAULT_SIGNATURE = re.compile(r"^vault:v(\d+):([A-Za-z0-9+/=_-]+)$")
# Vault wraps error lists as "1 error occurred:\n\t* permission denied\n\n".
_MULTIERROR = re.compile(r"^\d+ errors? occurred:$")
# Transit reports a missing key or version as a 400 or 500 with one of these messages.
_NOT_FOUND = re.compile(r"not (?:be )?found|no existing key|no such key")


class VaultKeys:
    """KeyBackend over a Vault API server. Constructing it does no I/O; the first call connects."""

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

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultKeys:
        """AppRole login when vault_role_id/vault_secret_id are set, else the token."""
        return cls(
            addr=settings.vault_addr,
            token="" if settings.vault_role_id else settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            transit_mount=settings.vault_transit_mount,
            kv_mount=settings.vault_kv_mount,
            timeout=settings.vault_timeout,
        )

    def __repr__(self) -> str:
        auth = "approle" if self._role_id else "token"
        return f"VaultKeys(addr={self.addr!r}, auth={auth})"

    def close(self) -> None:
        """Close the keep-alive connections."""
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None
                self._token_expires_at = None  # a new client must log in again

    # ---------------------------------------------------------------------------------- health
    def check(self) -> list[HealthCheck]:
        try:
            server = self._check_server()
            if not server.ok:
                return [server]
            return [server, self._check_auth()]
        except Exception as exc:  # a health check reports, it never raises
            logger.exception("vault health check failed")
            return [HealthCheck(name=BACKEND, ok=False, detail=f"check failed: {exc}", hint=HINT_START)]

    def _check_server(self) -> HealthCheck:
        started = time.monotonic()
        try:
            response = self._session_client().adapter.get(
                "/v1/sys/health",
                params={"standbyok": "true", "perfstandbyok": "true"},
                raise_exception=False,
                timeout=min(self.timeout, CHECK_TIMEOUT),
            )
        except requests.RequestException as exc:
            return HealthCheck(
                name=BACKEND,
                ok=False,
                detail=f"cannot reach {self.addr}: {_connection_problem(exc)}",
                hint=HINT_START,
                elapsed_ms=_ms_since(started),
            )
        body: Any = response if isinstance(response, dict) else _json_or_empty(response)
        version = str(body.get("version", ""))
        if not body.get("initialized", False):
            state, ok, hint = "not initialized", False, "initialise and unseal it (bao operator init)"
        elif body.get("sealed", True):
            state, ok, hint = "sealed", False, "unseal it (bao operator unseal)"
        else:
            role = "standby" if body.get("standby") else "active"
            state, ok, hint = f"initialized, unsealed, {role}", True, ""
        return HealthCheck(
            name=BACKEND,
            ok=ok,
            detail=f"Vault API {version or '?'} at {self.addr}: {state}",
            version=version,
            hint=hint,
            elapsed_ms=_ms_since(started),
        )

    def _check_auth(self) -> HealthCheck:
        started = time.monotonic()
        try:
            data = self._call(
                "look up its own token",
                lambda c: c.adapter.get(
                    "/v1/auth/token/lookup-self", timeout=min(self.timeout, CHECK_TIMEOUT)
                ),
            )["data"]
        except BackendError as exc:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=False,
                detail=exc.message,
                hint="set CONTROLPLANE_VAULT_TOKEN, or CONTROLPLANE_VAULT_ROLE_ID and _SECRET_ID",
                elapsed_ms=_ms_since(started),
            )
        policies = sorted(str(p) for p in data.get("policies") or [])
        how = "AppRole login" if self._role_id else "token"
        if "root" in policies:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=True,
                detail=f"{how}: root token (ACLs bypassed; use a least-privilege token in production)",
                elapsed_ms=_ms_since(started),
            )
        ttl = int(data.get("ttl") or 0)
        detail = f"{how}: policies {', '.join(policies)}; " + (f"ttl {ttl}s" if ttl else "no expiry")
        if RETIRED_KEYS_POLICY not in policies:
            return HealthCheck(
                name=f"{BACKEND}:auth",
                ok=False,
                detail=detail,
                hint=f"the token lacks policy {RETIRED_KEYS_POLICY}, so verify-only keys could still "
                "sign through it; issue one with it",
                elapsed_ms=_ms_since(started),
            )
        return HealthCheck(
            name=f"{BACKEND}:auth", ok=True, detail=detail, elapsed_ms=_ms_since(started)
        )

    # ---------------------------------------------------------------------------- signing keys
    def ensure_signing_key(self, name: str) -> SigningKey:
        _check_key_name(name)
        response = self._call(
            f"create signing key {name}",
            lambda c: c.secrets.transit.create_key(
                name, key_type="ed25519", mount_point=self.transit_mount
            ),
        )
        # OpenBao answers with the key (an existing key of any type included); Vault with 204.
        if isinstance(response, dict) and response.get("data"):
            key = _signing_key(response["data"])
        else:
            key = self.get_signing_key(name)
        logger.debug("signing key %s ensured at version %d", name, key.latest_version)
        return key

    def get_signing_key(self, name: str) -> SigningKey:
        _check_key_name(name)
        response = self._call(
            f"read signing key {name}",
            lambda c: c.secrets.transit.read_key(name, mount_point=self.transit_mount),
        )
        return _signing_key(response["data"])

    def rotate_signing_key(self, name: str) -> SigningKey:
        _check_key_name(name)
        self._call(
            f"rotate signing key {name}",
            lambda c: c.secrets.transit.rotate_key(name, mount_point=self.transit_mount),
        )
        key = self.get_signing_key(name)
        logger.info("signing key %s rotated to version %d", name, key.latest_version)
        return key

    def sign(
        self, name: str, messages: Sequence[bytes], *, key_version: int | None = None
    ) -> list[Signature]:
        _check_key_name(name)
        signatures: list[Signature] = []
        for chunk in split_batches(messages, self.sign_batch_size):
            signatures += self._sign_batch(name, chunk, key_version)
        logger.debug("signed %d message(s) with key %s", len(signatures), name)
        return signatures

    def _sign_batch(
        self, name: str, chunk: Sequence[bytes], key_version: int | None
    ) -> list[Signature]:
        batch = [{"input": base64.b64encode(message).decode("ascii")} for message in chunk]
        response = self._call(
            f"sign with key {name}",
            lambda c: c.secrets.transit.sign_data(
                name, batch_input=batch, key_version=key_version, mount_point=self.transit_mount
            ),
        )
        results = response["data"]["batch_results"]
        if len(results) != len(chunk):
            raise PermanentError(
                f"vault returned {len(results)} signatures for {len(chunk)} messages",
                backend=BACKEND,
            )
        signatures = []
        for item in results:
            if item.get("error"):
                raise _item_error(str(item["error"]), f"sign with key {name}")
            version, raw = parse_vault_signature(str(item["signature"]))
            signatures.append(Signature(key_name=name, key_version=version, signature=raw))
        return signatures

    def make_key_verify_only(self, name: str) -> SigningKey:
        _check_key_name(name)
        key = self.get_signing_key(name)
        if name in self._retired_keys()[0]:
            return key
        # Before the deny rules, which also cover the config path.
        self._call(
            f"protect signing key {name} from deletion",
            lambda c: c.secrets.transit.update_key_configuration(
                name, deletion_allowed=False, mount_point=self.transit_mount
            ),
        )
        self._update_retired_keys(lambda names: names | {name})
        logger.info("signing key %s is verify-only now", name)
        return dataclasses.replace(key, deletion_allowed=False)

    def is_key_verify_only(self, name: str) -> bool:
        _check_key_name(name)
        return name in self._retired_keys()[0]

    def delete_signing_key(self, name: str, *, force: bool = False) -> None:
        _check_key_name(name)
        if not force:
            raise PermanentError(
                f"refusing to delete signing key {name}: documents it signed could no longer be "
                "verified against Vault; archive its public keys, then pass force=True",
                backend=BACKEND,
            )
        if name in self._retired_keys()[0]:
            self._update_retired_keys(lambda names: names - {name})
        try:
            self._call(
                f"allow deletion of signing key {name}",
                lambda c: c.secrets.transit.update_key_configuration(
                    name, deletion_allowed=True, mount_point=self.transit_mount
                ),
            )
            self._call(
                f"delete signing key {name}",
                lambda c: c.secrets.transit.delete_key(name, mount_point=self.transit_mount),
            )
        except BackendNotFound:
            return
        logger.warning("signing key %s deleted with all its versions", name)

    # ------------------------------------------------------------------------------- policies
    def ensure_policy(self, name: str, hcl: str) -> bool:
        _check_name(name, "policy")
        try:
            if self.read_policy(name).strip() == hcl.strip():
                return False
        except BackendNotFound:
            pass
        self._call(
            f"write policy {name}",
            lambda c: c.sys.create_or_update_acl_policy(name, hcl, pretty_print=False),
        )
        logger.info("policy %s written", name)
        return True

    def read_policy(self, name: str) -> str:
        _check_name(name, "policy")
        data = self._call(f"read policy {name}", lambda c: c.sys.read_acl_policy(name))["data"]
        return str(data["policy"])

    def delete_policy(self, name: str) -> None:
        _check_name(name, "policy")
        self._call(f"delete policy {name}", lambda c: c.sys.delete_acl_policy(name))

    def _retired_keys(self) -> tuple[frozenset[str], int | None]:
        """Names denied in RETIRED_KEYS_POLICY and the policy's CAS version (None: no CAS support)."""
        try:
            data = self._call(
                f"read policy {RETIRED_KEYS_POLICY}",
                lambda c: c.sys.read_acl_policy(RETIRED_KEYS_POLICY),
            )["data"]
        except BackendNotFound:
            return frozenset(), 0
        version = data.get("version")
        names = retired_key_names(str(data.get("policy", "")), transit_mount=self.transit_mount)
        return names, int(version) if version is not None else None

    def _update_retired_keys(self, change: Callable[[frozenset[str]], frozenset[str]]) -> None:
        for _ in range(POLICY_CAS_ATTEMPTS):
            names, version = self._retired_keys()
            body: dict[str, Any] = {
                "policy": retired_keys_policy_hcl(change(names), transit_mount=self.transit_mount)
            }
            if version is not None:
                body["cas"] = version
            try:
                self._write_retired_keys(body)
                return
            except PermanentError as exc:
                if "check-and-set" not in exc.message:
                    raise
                logger.info("policy %s changed meanwhile; retrying", RETIRED_KEYS_POLICY)
        raise TemporaryError(
            f"policy {RETIRED_KEYS_POLICY} kept changing during {POLICY_CAS_ATTEMPTS} attempts",
            backend=BACKEND,
            delay=1.0,
        )

    def _write_retired_keys(self, body: Mapping[str, Any]) -> None:
        self._call(
            f"write policy {RETIRED_KEYS_POLICY}",
            lambda c: c.adapter.post(f"/v1/sys/policies/acl/{RETIRED_KEYS_POLICY}", json=body),
        )

    # -------------------------------------------------------------------------------- AppRoles
    def ensure_approle(
        self,
        role_name: str,
        policies: Sequence[str],
        *,
        token_ttl: int,
        secret_id_ttl: int,
        secret_id_num_uses: int,
    ) -> AppRole:
        _check_name(role_name, "role")
        all_policies = tuple(sorted({*policies, RETIRED_KEYS_POLICY}))
        self._call(
            f"write AppRole {role_name}",
            lambda c: c.auth.approle.create_or_update_approle(
                role_name,
                token_policies=list(all_policies),
                token_ttl=f"{token_ttl}s",
                token_max_ttl=f"{token_ttl}s",
                secret_id_ttl=f"{secret_id_ttl}s",
                secret_id_num_uses=secret_id_num_uses,
                mount_point=self.approle_mount,
            ),
        )
        return AppRole(
            role_name=role_name, role_id=self.read_role_id(role_name), policies=all_policies
        )

    def read_role_id(self, role_name: str) -> str:
        _check_name(role_name, "role")
        response = self._call(
            f"read role_id of AppRole {role_name}",
            lambda c: c.auth.approle.read_role_id(role_name, mount_point=self.approle_mount),
        )
        return str(response["data"]["role_id"])

    def issue_secret_id(self, role_name: str) -> SecretId:
        _check_name(role_name, "role")
        data = self._call(
            f"issue a secret_id for AppRole {role_name}",
            lambda c: c.auth.approle.generate_secret_id(role_name, mount_point=self.approle_mount),
        )["data"]
        logger.info("secret_id issued for AppRole %s (accessor %s)", role_name, data["secret_id_accessor"])
        return SecretId(
            role_name=role_name,
            value=str(data["secret_id"]),
            accessor=str(data["secret_id_accessor"]),
            ttl_seconds=int(data.get("secret_id_ttl") or 0),
            num_uses=int(data.get("secret_id_num_uses") or 0),
        )

    def delete_approle(self, role_name: str) -> None:
        _check_name(role_name, "role")
        self._call(
            f"delete AppRole {role_name}",
            lambda c: c.auth.approle.delete_role(role_name, mount_point=self.approle_mount),
        )

    def login_approle(self, role_id: str, secret_id: str) -> KeyBackend:
        other = VaultKeys(
            addr=self.addr,
            role_id=role_id,
            secret_id=secret_id,
            transit_mount=self.transit_mount,
            kv_mount=self.kv_mount,
            approle_mount=self.approle_mount,
            timeout=self.timeout,
            sign_batch_size=self.sign_batch_size,
        )
        other._connected()  # log in now: a refused secret_id should fail here, not at first use
        return other

    # ------------------------------------------------------------------------------ KV secrets
    def put_secret(self, path: str, data: Mapping[str, str]) -> int:
        _check_kv_path(path)
        response = self._call(
            f"write secret {path}",
            lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=path, secret=dict(data), mount_point=self.kv_mount
            ),
        )
        return int(response["data"]["version"])

    def get_secret(self, path: str) -> Secret:
        _check_kv_path(path)
        response = self._call(
            f"read secret {path}",
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.kv_mount, raise_on_deleted_version=True
            ),
        )
        data = response["data"]
        return Secret(
            path=path,
            version=int(data["metadata"]["version"]),
            data={str(k): str(v) for k, v in (data["data"] or {}).items()},
        )

    def delete_secret(self, path: str) -> None:
        _check_kv_path(path)
        self._call(
            f"delete secret {path}",
            lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
                path=path, mount_point=self.kv_mount
            ),
        )

    # ---------------------------------------------------------------------------- plumbing
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
                f"AppRole login at {self.addr} refused: {_server_message(exc)}",
                backend=BACKEND,
                hint="issue a new secret_id for the role",
            ) from exc
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise self._translate(exc, "log in with AppRole") from exc
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
            raise self._translate(exc, action) from exc

    def _translate(self, exc: Exception, action: str) -> BackendError:
        if isinstance(exc, requests.RequestException):
            if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
                return PermanentError(f"vault_addr {self.addr!r} is not a URL", backend=BACKEND)
            return TemporaryError(
                f"vault at {self.addr} did not answer while trying to {action}: "
                f"{_connection_problem(exc)}",
                backend=BACKEND,
                hint=HINT_START,
            )
        assert isinstance(exc, hvac.exceptions.VaultError)
        message = f"vault refused to {action}: {_server_message(exc)}"
        if isinstance(exc, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
            return BackendPermissionDenied(message, backend=BACKEND)
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return BackendNotFound(f"not found in vault: could not {action}", backend=BACKEND)
        if _is_not_found(_server_message(exc)):
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


# ------------------------------------------------------------------------------- pure helpers
def split_batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items, in order; nothing for an empty sequence."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_vault_signature(text: str) -> tuple[int, bytes]:
    """'vault:v<N>:<base64>' -> (N, raw signature bytes)."""
    match = _VAULT_SIGNATURE.match(text)
    if not match:
        raise PermanentError(f"unexpected signature format {text[:24]!r}", backend=BACKEND)
    body = match.group(2)
    altchars = b"-_" if "-" in body or "_" in body else None  # jws marshaling: base64url
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except binascii.Error:
        raise PermanentError("signature is not valid base64", backend=BACKEND) from None
    return int(match.group(1)), raw


def retired_keys_policy_hcl(names: frozenset[str] | set[str], *, transit_mount: str) -> str:
    """The deny rules that make each named key verify-only (see the module docstring)."""
    lines = [
        "# Verify-only (decommissioned) signing keys: no signing, rotation, configuration or trim.",
        "# Written by the control plane (VaultKeys.make_key_verify_only); every token carries it.",
    ]
    for name in sorted(names):
        _check_key_name(name)
        for path in ("sign/{}", "sign/{}/*", "keys/{}/rotate", "keys/{}/config", "keys/{}/trim"):
            lines.append(f'path "{transit_mount}/{path.format(name)}" {{ capabilities = ["deny"] }}')
    return "\n".join(lines) + "\n"


def retired_key_names(hcl: str, *, transit_mount: str) -> frozenset[str]:
    """The key names `retired_keys_policy_hcl` wrote into `hcl`."""
    pattern = re.compile(rf'^path "{re.escape(transit_mount)}/sign/([^"/*]+)"', re.MULTILINE)
    return frozenset(name for name in pattern.findall(hcl) if _NAME.match(name))


def _signing_key(data: Mapping[str, Any]) -> SigningKey:
    name = str(data["name"])
    if data.get("type") != "ed25519":
        raise PermanentError(
            f"transit key {name} is of type {data.get('type')}, not ed25519", backend=BACKEND
        )
    public_keys: dict[int, bytes] = {}
    for version, entry in (data.get("keys") or {}).items():
        raw = base64.b64decode(str(entry["public_key"]))
        if len(raw) != 32:
            raise PermanentError(f"key {name} v{version}: public key is not 32 bytes", backend=BACKEND)
        public_keys[int(version)] = raw
    return SigningKey(
        name=name,
        latest_version=int(data["latest_version"]),
        public_keys=dict(sorted(public_keys.items())),
        deletion_allowed=bool(data.get("deletion_allowed", False)),
    )


def _item_error(error: str, action: str) -> BackendError:
    message = f"vault refused to {action}: {error}"
    if "higher than the latest key version" in error or _is_not_found(error):
        return BackendNotFound(message, backend=BACKEND)
    if "permission denied" in error:
        return BackendPermissionDenied(message, backend=BACKEND)
    return PermanentError(message, backend=BACKEND)


def _is_not_found(message: str) -> bool:
    return _NOT_FOUND.search(message) is not None


def _server_message(exc: hvac.exceptions.VaultError) -> str:
    errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
    lines = (line.strip().removeprefix("* ") for e in errors for line in str(e).splitlines())
    text = "; ".join(line for line in lines if line and not _MULTIERROR.match(line))
    return text or f"HTTP error ({type(exc).__name__})"


def _connection_problem(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return type(exc).__name__


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _check_name(name: str, kind: str) -> None:
    if not _NAME.match(name or ""):
        raise PermanentError(f"invalid {kind} name {name!r}", backend=BACKEND)


def _check_key_name(name: str) -> None:
    _check_name(name, "signing key")


def _check_kv_path(path: str) -> None:
    segments = (path or "").split("/")
    if not all(_KV_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise PermanentError(f"invalid secret path {path!r}", backend=BACKEND)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
