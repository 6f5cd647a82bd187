"""The keys port: signing keys, ACL policies, AppRoles and KV secrets, as the control plane sees them.

The real adapter is `controlplane.backends.vault.VaultKeys` (OpenBao / Vault through hvac). Everything
here is the project's own vocabulary: frozen dataclasses in and out, never SDK objects. Adapters raise
only `TemporaryError`, `PermanentError`, `BackendPermissionDenied` and `BackendNotFound`.

Conventions every adapter keeps:
- `ensure_*` is idempotent; `get_*` / `read_*` raise `BackendNotFound`; `delete_*` of something already
  gone succeeds (a retried decommission must not fail on its own earlier progress).
- Signatures are verified offline (DESIGN §6): `SigningKey.public_keys` holds the raw 32-byte Ed25519
  public key of every version the backend still lists; callers archive them at signing time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from controlplane.backends.health import HealthCheck
from controlplane.errors import InvalidInput

# Slugs are DNS-label shaped and never contain a dot, so "<slug>.*" in a policy can only match the
# tenant's own extra keys ("<slug>.<purpose>"), never another tenant's ("health" vs "health-lab").
TENANT_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
KEY_PURPOSE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")

# Every token the control plane uses or issues carries this policy; a verify-only key is a `deny`
# entry in it (see VaultKeys.make_key_verify_only).
RETIRED_KEYS_POLICY = "retired-signing-keys"
TENANT_POLICY_PREFIX = "tenant-"
# The platform's own keys (documents.trustlist, audit.checkpoints name them too; a unit test keeps
# them equal). Only the publisher policy signs with the first two; the witness key belongs to the
# witness service and its own OpenBao.
TRUST_ROOT_KEY = "cp_trust_root"
AUDIT_KEY = "cp_audit"
WITNESS_KEY = "cp_audit_witness"
PLATFORM_KEYS = (TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY)
# The witness co-signs in its own process with its own OpenBao (controlplane.witness): no policy of
# the control plane signs with WITNESS_KEY, which only older deployments still hold (read-only).
PUBLISHER_KEYS = (TRUST_ROOT_KEY, AUDIT_KEY)
# The policy names scripts/devvault writes and the tokens of each role carry (with RETIRED_KEYS_POLICY).
CONSOLE_POLICY = "controlplane-console"
WORKER_POLICY = "controlplane-worker"
PUBLISHER_POLICY = "controlplane-publisher"


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 signing key and the public half of every version the backend still lists."""

    name: str
    latest_version: int
    public_keys: dict[int, bytes]  # version -> raw 32-byte Ed25519 public key
    key_type: str = "ed25519"
    deletion_allowed: bool = False

    def public_key(self, version: int) -> bytes:
        """The raw public key of `version`; KeyError when the backend no longer lists it."""
        return self.public_keys[version]


@dataclass(frozen=True)
class Signature:
    """One Ed25519 signature (64 raw bytes) and the key version that made it (COSE `kid`)."""

    key_name: str
    key_version: int
    signature: bytes


@dataclass(frozen=True)
class AppRole:
    """An AppRole for a ministry's systems; `policies` is what its tokens carry."""

    role_name: str
    role_id: str
    policies: tuple[str, ...]


@dataclass(frozen=True)
class SecretId:
    """A freshly issued AppRole secret_id. The value is never part of repr() or str()."""

    role_name: str
    value: str = field(repr=False)
    accessor: str
    ttl_seconds: int
    num_uses: int

    def __str__(self) -> str:
        return f"SecretId(role_name={self.role_name!r}, accessor={self.accessor!r}, value=***)"


@dataclass(frozen=True)
class Secret:
    """One version of a KV secret. `data` is kept out of repr() so it cannot end up in a log line."""

    path: str
    version: int
    data: dict[str, str] = field(repr=False)


class KeyBackend(Protocol):
    """Signing keys (Ed25519), ACL policies, AppRoles and KV secrets of the ministries."""

    def check(self) -> list[HealthCheck]:
        """Reachable, initialised and unsealed, authenticated, which version. Never raises."""
        ...

    # -- signing keys ---------------------------------------------------------------------------
    def ensure_signing_key(self, name: str) -> SigningKey:
        """Create the Ed25519 key if missing; return it. PermanentError if `name` exists with another type."""
        ...

    def get_signing_key(self, name: str) -> SigningKey:
        """The key and its public keys. :raises BackendNotFound: no such key."""
        ...

    def rotate_signing_key(self, name: str) -> SigningKey:
        """Add a new version that becomes the default for signing; old public keys stay listed."""
        ...

    def sign(
        self, name: str, messages: Sequence[bytes], *, key_version: int | None = None
    ) -> list[Signature]:
        """Sign each message as-is (pure Ed25519), in order; batched under the backend's limits.

        :raises BackendNotFound: no such key or key version.
        :raises BackendPermissionDenied: this identity may not sign with `name` (or the key is verify-only).
        """
        ...

    def make_key_verify_only(self, name: str) -> SigningKey:
        """Decommission: nobody may sign with `name` any more; its public keys stay readable. Idempotent."""
        ...

    def is_key_verify_only(self, name: str) -> bool:
        """Whether `make_key_verify_only(name)` is in force."""
        ...

    def delete_signing_key(self, name: str, *, force: bool = False) -> None:
        """Destroy the key and all its versions. Refused (PermanentError) unless `force=True`."""
        ...

    # -- ACL policies ---------------------------------------------------------------------------
    def ensure_policy(self, name: str, hcl: str) -> bool:
        """Create or update the policy; return True when it changed."""
        ...

    def read_policy(self, name: str) -> str:
        """The policy text. :raises BackendNotFound: no such policy."""
        ...

    def delete_policy(self, name: str) -> None: ...

    # -- AppRoles -------------------------------------------------------------------------------
    def ensure_approle(
        self,
        role_name: str,
        policies: Sequence[str],
        *,
        token_ttl: int,
        secret_id_ttl: int,
        secret_id_num_uses: int,
    ) -> AppRole:
        """Create or update the role (TTLs in seconds). Its tokens also carry RETIRED_KEYS_POLICY."""
        ...

    def read_role_id(self, role_name: str) -> str: ...

    def issue_secret_id(self, role_name: str) -> SecretId:
        """A new secret_id for the role. Hand it to the ministry's system; never log it."""
        ...

    def delete_approle(self, role_name: str) -> None: ...

    def destroy_secret_id(self, role_name: str, accessor: str) -> None:
        """Make that secret_id (named by its accessor) unusable at once; an unknown one is done."""
        ...

    def login_approle(self, role_id: str, secret_id: str) -> KeyBackend:
        """An adapter of the same backend authenticated as that AppRole.

        :raises BackendPermissionDenied: the role_id / secret_id pair was refused.
        """
        ...

    # -- KV secrets -----------------------------------------------------------------------------
    def put_secret(self, path: str, data: Mapping[str, str]) -> int:
        """Write a new version of the secret at `path` (relative to the KV mount); return its version."""
        ...

    def get_secret(self, path: str) -> Secret:
        """The latest version. :raises BackendNotFound: nothing at `path`."""
        ...

    def delete_secret(self, path: str) -> None:
        """Destroy every version and the metadata of `path`."""
        ...


# ------------------------------------------------------------------------------- naming and policies
def tenant_policy_name(tenant_slug: str) -> str:
    """`tenant-<slug>`: the name the control-plane policy lets the control plane manage."""
    return TENANT_POLICY_PREFIX + _checked_slug(tenant_slug)


def signing_key_name(tenant_slug: str, purpose: str | None = None) -> str:
    """The tenant's signing key: `<slug>`, or `<slug>.<purpose>` for a further key of the same tenant."""
    slug = _checked_slug(tenant_slug)
    if purpose is None:
        return slug
    if not KEY_PURPOSE.match(purpose):
        raise InvalidInput(f"key purpose {purpose!r} must be lowercase letters, digits, '-' or '_'")
    return f"{slug}.{purpose}"


def tenant_policy_hcl(tenant_slug: str, *, transit_mount: str, kv_mount: str) -> str:
    """The ACL policy of one tenant: sign with its own key(s), read their public keys, use its KV path.

    Nothing else: no verify (verification is offline), no key creation, rotation or configuration,
    no other tenant's key or secrets. `<slug>.*` covers the tenant's further keys only, because slugs
    never contain a dot (see `signing_key_name`).
    """
    slug = _checked_slug(tenant_slug)
    transit = _checked_mount(transit_mount)
    kv = _checked_mount(kv_mount)
    rules: list[tuple[str, str, str]] = []
    for key in (slug, f"{slug}.*"):
        rules += [
            (f"{transit}/sign/{key}", '["update"]', "sign"),
            (f"{transit}/keys/{key}", '["read"]', "read the key's public keys"),
            (f"{transit}/export/public-key/{key}", '["read"]', "export the public keys"),
        ]
    # sign/<name>/<hash_algorithm> and export/public-key/<name>/<version>
    rules += [
        (f"{transit}/sign/{slug}/*", '["update"]', "sign, hash algorithm in the URL"),
        (f"{transit}/export/public-key/{slug}/*", '["read"]', "one exported version"),
        (f"{kv}/data/tenants/{slug}/*", '["create", "read", "update", "delete"]', "own secrets"),
    ]
    lines = [f"# Tenant {slug}: sign with its own key(s), read their public keys, its own secrets."]
    lines += [f'path "{path}" {{ capabilities = {caps} }}  # {why}' for path, caps, why in rules]
    return "\n".join(lines) + "\n"


def controlplane_policy_hcl(
    *, transit_mount: str, kv_mount: str, approle_mount: str = "approle"
) -> str:
    """The all-in-one policy of the `full` role (tests and single-process development only).

    Production and scripts/run split it by role: `console_policy_hcl`, `worker_policy_hcl` and
    `publisher_policy_hcl`.

    It manages signing keys, tenant policies (`tenant-*` and RETIRED_KEYS_POLICY only, so it cannot
    rewrite this policy or `default`), AppRoles and KV secrets. It cannot mount engines, touch
    audit devices, create tokens or read other policies. A token for it:
    `bao token create -policy=controlplane -policy=retired-signing-keys`.

    Not a boundary against a compromised control plane: whoever writes `tenant-*` policies and
    AppRoles can grant a role anything but root. `allowed_parameters` cannot narrow AppRole
    `token_policies` (OpenBao 2.7 matches list values inconsistently: ["tenant-a", "controlplane"]
    passes a "tenant-*" rule while ["retired-signing-keys", "tenant-a"] fails an exact one), so
    this policy does not pretend to.
    """
    transit = _checked_mount(transit_mount)
    kv = _checked_mount(kv_mount)
    approle = _checked_mount(approle_mount)
    return f"""\
# The control plane: signing keys, tenant policies and AppRoles, KV secrets. No mounts, no tokens.
path "{transit}/keys" {{ capabilities = ["list"] }}
path "{transit}/keys/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}
path "{transit}/sign/*" {{ capabilities = ["update"] }}
path "{transit}/export/public-key/*" {{ capabilities = ["read"] }}
path "sys/policies/acl/{TENANT_POLICY_PREFIX}*" {{ capabilities = ["create", "read", "update", "delete"] }}
path "sys/policies/acl/{RETIRED_KEYS_POLICY}" {{ capabilities = ["create", "read", "update"] }}
path "auth/{approle}/role/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}
path "{kv}/data/*" {{ capabilities = ["create", "read", "update", "delete"] }}
path "{kv}/metadata/*" {{ capabilities = ["read", "list", "delete"] }}
"""


# ----------------------------------------------------------------------- the policies of each role
CRUD = '["create", "read", "update", "delete"]'


def worker_policy_hcl(*, transit_mount: str, kv_mount: str, approle_mount: str = "approle") -> str:
    """The worker's policy (use it with RETIRED_KEYS_POLICY): it manages the tenants' Vault objects.

    Create, rotate, read, make verify-only and delete tenant keys; write `tenant-*` policies and
    RETIRED_KEYS_POLICY; define AppRoles (and so obtain any tenant's identity, e.g. for
    `controlplane documents` at the worker's shell); tenant KV. It signs nothing itself: no
    `transit/sign/*`, and the platform keys (PLATFORM_KEYS: trust root, audit, witness) are readable
    only, so it can neither sign with, rotate, reconfigure nor delete them. Not a boundary against a
    compromised worker for tenant keys: whoever writes `tenant-*` policies and AppRoles can grant a
    role any tenant key (see `controlplane_policy_hcl`).
    """
    transit = _checked_mount(transit_mount)
    kv = _checked_mount(kv_mount)
    approle = _checked_mount(approle_mount)
    lines = [
        "# The worker: tenant keys, tenant-* policies and AppRoles, tenant KV. Signs nothing.",
        f'path "{transit}/keys" {{ capabilities = ["list"] }}',
        f'path "{transit}/keys/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}',
        f'path "{transit}/export/public-key/*" {{ capabilities = ["read"] }}',
        f'path "sys/policies/acl/{TENANT_POLICY_PREFIX}*" {{ capabilities = {CRUD} }}',
        f'path "sys/policies/acl/{RETIRED_KEYS_POLICY}" {{ capabilities = ["create", "read", "update"] }}',
        f'path "auth/{approle}/role/*" {{ capabilities = ["create", "read", "update", "delete", "list"] }}',
        f'path "{kv}/data/tenants/*" {{ capabilities = {CRUD} }}',
        f'path "{kv}/metadata/tenants/*" {{ capabilities = ["read", "list", "delete"] }}',
        "# The platform keys: public keys readable, nothing else (an exact path beats the glob above).",
    ]
    for key in PLATFORM_KEYS:
        lines += [
            f'path "{transit}/keys/{key}" {{ capabilities = ["read"] }}',
            f'path "{transit}/keys/{key}/*" {{ capabilities = ["deny"] }}',
        ]
    return "\n".join(lines) + "\n"


def publisher_policy_hcl(*, transit_mount: str) -> str:
    """The publisher's policy: sign with the trust-root and audit keys, and nothing else.

    Held by the worker as a second token (`vault_publisher_token`) and used only by the trust-list
    publisher (documents.publication) and the audit sequencer. The keys are created on first use,
    so `create` on exactly those names; no rotate, config, trim or delete, no other key.
    """
    transit = _checked_mount(transit_mount)
    lines = ["# The publisher: sign trust lists and audit checkpoints. Nothing else."]
    for key in PUBLISHER_KEYS:
        lines += [
            # `update`: transit answers a create of an existing key with the key, unchanged
            f'path "{transit}/keys/{key}" {{ capabilities = ["create", "read", "update"] }}',
            f'path "{transit}/keys/{key}/*" {{ capabilities = ["deny"] }}',  # no rotate/config/trim
            f'path "{transit}/sign/{key}" {{ capabilities = ["update"] }}',
            f'path "{transit}/sign/{key}/*" {{ capabilities = ["update"] }}',
            f'path "{transit}/export/public-key/{key}" {{ capabilities = ["read"] }}',
        ]
    return "\n".join(lines) + "\n"


def console_policy_hcl(*, approle_mount: str = "approle") -> str:
    """The console/API policy: obtain one organisation's signing identity at a time, nothing else.

    Read an AppRole's role_id, create a secret_id for it and destroy that secret_id again
    (documents.signer.OrgSigner): the identity then signs with that organisation's key only, under
    the tenant's own policy (which carries RETIRED_KEYS_POLICY, so a retired key stays retired).
    No transit path at all (no signing, no key configuration, so no re-enabling a retired key), no
    `sys/`, no policies, no AppRole definitions, no KV. Role names are one path segment (`+`):
    the AppRole mount must hold tenant roles only; the control plane's own identities are tokens
    (or AppRoles on another mount), so the console cannot obtain the worker's or publisher's.
    """
    approle = _checked_mount(approle_mount)
    return f"""\
# The console/API: obtain a tenant's signing identity (AppRole login), one organisation at a time.
path "auth/{approle}/role/+/role-id" {{ capabilities = ["read"] }}
path "auth/{approle}/role/+/secret-id" {{ capabilities = ["update"] }}
path "auth/{approle}/role/+/secret-id-accessor/destroy" {{ capabilities = ["update"] }}
"""


def _checked_slug(tenant_slug: str) -> str:
    if not TENANT_SLUG.match(tenant_slug):
        raise InvalidInput(
            f"tenant slug {tenant_slug!r} must be 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return tenant_slug


def _checked_mount(mount: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*", mount):
        raise InvalidInput(f"mount path {mount!r} must be letters, digits, '-', '_' and '/'")
    return mount
