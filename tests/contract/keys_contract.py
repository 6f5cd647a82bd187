"""Contract of the keys port (`controlplane.backends.keys.KeyBackend`), run on a real OpenBao.

`KeyBackendContract` is the reusable part: a test class for another implementation inherits it
and provides the fixtures ``backend`` (the control plane's own, least-privilege identity),
``unreachable_backend`` (the same kind of backend pointed at a closed port) and ``mounts``
(the transit and KV mount names its tenant policies use). `TestVaultKeys` runs it against
`VaultKeys` on a `bao server -dev` (tests/contract/test_keys_contract.py), plus what is specific to Vault.

Every signature is verified offline with `cryptography`, against the public keys the backend
returned: the documents' verifiers never call Vault (DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.backends.keys import (
    RETIRED_KEYS_POLICY,
    KeyBackend,
    SigningKey,
    signing_key_name,
    tenant_policy_hcl,
    tenant_policy_name,
)
from controlplane.errors import (
    BackendNotFound,
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)
from tests.fixtures.vault import (
    VaultJanitor,
    fresh_name,
)


def verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Tenant:
    """A ministry as the control plane provisions it: key, policy, AppRole, and its own login."""

    slug: str
    key: SigningKey
    role_id: str
    backend: KeyBackend  # logged in as the tenant's AppRole


class KeyBackendContract:
    """What every KeyBackend must do. Subclasses provide ``backend``, ``unreachable_backend``
    and ``mounts``."""

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture
    def janitor(
        self, backend: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]
    ) -> VaultJanitor:
        return make_vault_janitor(backend)

    @pytest.fixture
    def key(self, backend: KeyBackend, janitor: VaultJanitor) -> SigningKey:
        return backend.ensure_signing_key(janitor.key(fresh_name("key")))

    @pytest.fixture
    def make_tenant(
        self, backend: KeyBackend, janitor: VaultJanitor, mounts: dict[str, str]
    ) -> Callable[..., Tenant]:
        def make(slug: str | None = None, *, secret_id_num_uses: int = 0) -> Tenant:
            slug = slug or fresh_name()
            key = backend.ensure_signing_key(janitor.key(signing_key_name(slug)))
            policy = janitor.policy(tenant_policy_name(slug))
            backend.ensure_policy(policy, tenant_policy_hcl(slug, **mounts))
            role = backend.ensure_approle(
                janitor.approle(slug),
                [policy],
                token_ttl=600,
                secret_id_ttl=600,
                secret_id_num_uses=secret_id_num_uses,
            )
            secret_id = backend.issue_secret_id(role.role_name)
            return Tenant(slug, key, role.role_id, backend.login_approle(role.role_id, secret_id.value))

        return make

    # ------------------------------------------------------------------ health
    def test_check_reports_reachable_authenticated_with_version(self, backend: KeyBackend) -> None:
        checks = backend.check()

        assert checks, "check() returned nothing"
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]
        assert checks[0].version[:1].isdigit(), checks[0]
        assert all(c.detail for c in checks)

    def test_unreachable_backend_checks_not_ok_without_raising_and_calls_are_temporary(
        self, unreachable_backend: KeyBackend
    ) -> None:
        checks = unreachable_backend.check()

        assert checks and not any(c.ok for c in checks)
        assert all(c.hint for c in checks if not c.ok)
        assert all(c.elapsed_ms < 5000 for c in checks)
        for call in (
            lambda: unreachable_backend.ensure_signing_key("anything"),
            lambda: unreachable_backend.sign("anything", [b"x"]),
            lambda: unreachable_backend.get_secret("tenants/x/y"),
        ):
            with pytest.raises(TemporaryError) as caught:
                call()
            assert caught.value.backend
            assert "connection refused" in caught.value.message

    # ------------------------------------------------------------------ signing keys
    def test_ensure_signing_key_is_idempotent(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.key(fresh_name("key"))

        first = backend.ensure_signing_key(name)
        again = backend.ensure_signing_key(name)

        assert first.name == name and first.key_type == "ed25519"
        assert first.latest_version == 1
        assert list(first.public_keys) == [1]
        assert len(first.public_keys[1]) == 32
        assert again == first
        assert backend.get_signing_key(name) == first

    def test_get_missing_key_raises_not_found(self, backend: KeyBackend) -> None:
        with pytest.raises(BackendNotFound):
            backend.get_signing_key(fresh_name("missing"))
        with pytest.raises(BackendNotFound):
            backend.sign(fresh_name("missing"), [b"x"])

    def test_sign_one_message_verifies_offline(self, backend: KeyBackend, key: SigningKey) -> None:
        message = b"Ministry of Finance, decision 2026/114"

        [signature] = backend.sign(key.name, [message])

        assert signature.key_name == key.name and signature.key_version == 1
        assert len(signature.signature) == 64
        assert verifies(key.public_keys[1], signature.signature, message)
        assert not verifies(key.public_keys[1], signature.signature, message + b".")

    def test_sign_empty_batch_returns_nothing(self, backend: KeyBackend, key: SigningKey) -> None:
        assert backend.sign(key.name, []) == []

    def test_batch_across_the_request_limit_verifies_offline_in_order(
        self, backend: KeyBackend, key: SigningKey
    ) -> None:
        # 1,200 items is well above the 499 one request to a default listener can carry.
        messages = [f"document {i:05d}".encode() + bytes([i % 256]) * (i % 7) for i in range(1200)]

        signatures = backend.sign(key.name, messages)

        assert len(signatures) == len(messages)
        assert {s.key_version for s in signatures} == {1}
        public_key = Ed25519PublicKey.from_public_bytes(key.public_keys[1])
        for signature, message in zip(signatures, messages, strict=True):
            public_key.verify(signature.signature, message)  # raises if wrong or out of order
        assert not verifies(key.public_keys[1], signatures[0].signature, messages[1])
        assert not verifies(key.public_keys[1], signatures[-1].signature, messages[-2])

    def test_rotate_signs_with_the_new_version_and_keeps_the_old_public_key(
        self, backend: KeyBackend, key: SigningKey
    ) -> None:
        rotated = backend.rotate_signing_key(key.name)

        assert rotated.latest_version == 2
        assert rotated.public_keys[1] == key.public_keys[1]
        assert rotated.public_keys[2] != key.public_keys[1]
        [latest] = backend.sign(key.name, [b"after rotation"])
        assert latest.key_version == 2
        assert verifies(rotated.public_keys[2], latest.signature, b"after rotation")
        assert not verifies(rotated.public_keys[1], latest.signature, b"after rotation")
        # An explicit older version still signs, also in batches past the request limit.
        old = backend.sign(key.name, [b"old %d" % i for i in range(600)], key_version=1)
        assert {s.key_version for s in old} == {1}
        assert verifies(rotated.public_keys[1], old[599].signature, b"old 599")

    def test_sign_with_a_version_that_does_not_exist_raises_not_found(
        self, backend: KeyBackend, key: SigningKey
    ) -> None:
        with pytest.raises(BackendNotFound):
            backend.sign(key.name, [b"x"], key_version=7)
        with pytest.raises(BackendNotFound):  # a batch sent as several requests at once fails alike
            backend.sign(key.name, [b"x"] * 1200, key_version=7)

    def test_delete_signing_key_is_refused_unless_forced(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.key(fresh_name("key"))
        backend.ensure_signing_key(name)

        with pytest.raises(PermanentError, match="force"):
            backend.delete_signing_key(name)
        assert backend.get_signing_key(name).latest_version == 1

        backend.delete_signing_key(name, force=True)
        with pytest.raises(BackendNotFound):
            backend.get_signing_key(name)
        backend.delete_signing_key(name, force=True)  # already gone: done

    def test_verify_only_key_cannot_sign_but_keeps_its_public_keys(
        self, backend: KeyBackend, make_tenant: Callable[..., Tenant]
    ) -> None:
        tenant = make_tenant()
        name = tenant.key.name
        [before] = backend.sign(name, [b"issued before decommission"])
        rotated = backend.rotate_signing_key(name)
        assert not backend.is_key_verify_only(name)

        retired = backend.make_key_verify_only(name)

        assert backend.is_key_verify_only(name)
        assert retired.public_keys == rotated.public_keys
        assert retired.deletion_allowed is False
        for signer in (backend, tenant.backend):
            with pytest.raises(BackendPermissionDenied):
                signer.sign(name, [b"issued after decommission"])
            with pytest.raises(BackendPermissionDenied):
                signer.sign(name, [b"old version"], key_version=1)
        with pytest.raises(BackendPermissionDenied):
            backend.rotate_signing_key(name)
        with pytest.raises(PermanentError, match="force"):
            backend.delete_signing_key(name)
        # Public keys stay readable for the control plane and the tenant; old documents verify.
        for reader in (backend, tenant.backend):
            kept = reader.get_signing_key(name)
            assert kept.public_keys == rotated.public_keys
            assert verifies(kept.public_keys[1], before.signature, b"issued before decommission")
        assert backend.make_key_verify_only(name) == retired  # idempotent

    # ------------------------------------------------------------------ tenant boundary
    def test_tenant_approle_signs_only_with_its_own_key(
        self, backend: KeyBackend, make_tenant: Callable[..., Tenant], janitor: VaultJanitor
    ) -> None:
        a, b = make_tenant(), make_tenant()
        own = janitor.secret(f"tenants/{a.slug}/db")
        other = janitor.secret(f"tenants/{b.slug}/db")
        backend.put_secret(own, {"password": "a-pass"})
        backend.put_secret(other, {"password": "b-pass"})

        [signature] = a.backend.sign(a.key.name, [b"tenant A's letter"])
        assert verifies(a.key.public_keys[1], signature.signature, b"tenant A's letter")
        assert a.backend.get_signing_key(a.key.name).public_keys == a.key.public_keys
        assert a.backend.get_secret(own).data == {"password": "a-pass"}
        assert a.backend.put_secret(own, {"password": "rotated"}) == 2

        with pytest.raises(BackendPermissionDenied, match="permission denied"):
            a.backend.sign(b.key.name, [b"forged letter"])
        with pytest.raises(BackendPermissionDenied):
            a.backend.rotate_signing_key(a.key.name)
        with pytest.raises(BackendPermissionDenied):
            a.backend.ensure_signing_key(signing_key_name(a.slug, "extra"))
        with pytest.raises(BackendPermissionDenied):
            a.backend.get_signing_key(b.key.name)
        with pytest.raises(BackendPermissionDenied):
            a.backend.get_secret(other)
        with pytest.raises(BackendPermissionDenied):
            a.backend.put_secret(other, {"password": "overwritten"})
        with pytest.raises(BackendPermissionDenied):
            a.backend.read_policy(tenant_policy_name(b.slug))
        assert backend.get_secret(other).data == {"password": "b-pass"}

    def test_tenant_policy_reaches_its_extra_keys_but_not_a_longer_slug(
        self, backend: KeyBackend, make_tenant: Callable[..., Tenant], janitor: VaultJanitor
    ) -> None:
        # "health" must not sign for "health-lab": a prefix glob would have allowed it.
        a = make_tenant()
        lab = make_tenant(f"{a.slug}-lab")
        extra = backend.ensure_signing_key(janitor.key(signing_key_name(a.slug, "mail")))

        [signature] = a.backend.sign(extra.name, [b"receipt"])
        assert verifies(extra.public_keys[1], signature.signature, b"receipt")
        with pytest.raises(BackendPermissionDenied):
            a.backend.sign(lab.key.name, [b"forged"])
        with pytest.raises(BackendPermissionDenied):
            lab.backend.sign(a.key.name, [b"forged"])

    # ------------------------------------------------------------------ AppRoles
    def test_ensure_approle_is_idempotent_and_carries_the_retired_keys_policy(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.approle(fresh_name("role"))
        policy = tenant_policy_name(fresh_name())

        role = backend.ensure_approle(
            name, [policy], token_ttl=300, secret_id_ttl=300, secret_id_num_uses=1
        )
        again = backend.ensure_approle(
            name, [policy], token_ttl=300, secret_id_ttl=300, secret_id_num_uses=1
        )

        assert again == role
        assert backend.read_role_id(name) == role.role_id
        assert set(role.policies) == {policy, RETIRED_KEYS_POLICY}

    def test_single_use_secret_id_logs_in_once(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.approle(fresh_name("role"))
        role = backend.ensure_approle(
            name, [], token_ttl=300, secret_id_ttl=300, secret_id_num_uses=1
        )
        secret_id = backend.issue_secret_id(name)

        assert secret_id.value not in repr(secret_id) and secret_id.value not in str(secret_id)
        assert secret_id.num_uses == 1
        tenant = backend.login_approle(role.role_id, secret_id.value)
        assert all(c.ok for c in tenant.check())
        with pytest.raises(BackendPermissionDenied):
            backend.login_approle(role.role_id, secret_id.value)

    def test_a_destroyed_secret_id_no_longer_logs_in(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.approle(fresh_name("role"))
        role = backend.ensure_approle(name, [], token_ttl=300, secret_id_ttl=300, secret_id_num_uses=0)
        kept, destroyed = backend.issue_secret_id(name), backend.issue_secret_id(name)

        backend.destroy_secret_id(name, destroyed.accessor)
        backend.destroy_secret_id(name, destroyed.accessor)  # already gone: done

        with pytest.raises(BackendPermissionDenied):
            backend.login_approle(role.role_id, destroyed.value)
        assert all(c.ok for c in backend.login_approle(role.role_id, kept.value).check())  # only that one

    def test_deleted_approle_no_longer_logs_in(
        self, backend: KeyBackend, janitor: VaultJanitor
    ) -> None:
        name = janitor.approle(fresh_name("role"))
        role = backend.ensure_approle(name, [], token_ttl=300, secret_id_ttl=300, secret_id_num_uses=0)
        secret_id = backend.issue_secret_id(name)

        backend.delete_approle(name)
        backend.delete_approle(name)  # already gone: done

        with pytest.raises(BackendNotFound):
            backend.read_role_id(name)
        with pytest.raises(BackendPermissionDenied):
            backend.login_approle(role.role_id, secret_id.value)

    # ------------------------------------------------------------------ policies
    def test_policy_round_trip(
        self, backend: KeyBackend, janitor: VaultJanitor, mounts: dict[str, str]
    ) -> None:
        slug = fresh_name()
        name = janitor.policy(tenant_policy_name(slug))
        hcl = tenant_policy_hcl(slug, **mounts)

        assert backend.ensure_policy(name, hcl) is True
        assert backend.ensure_policy(name, hcl) is False
        assert backend.read_policy(name).strip() == hcl.strip()

        backend.delete_policy(name)
        with pytest.raises(BackendNotFound):
            backend.read_policy(name)
        backend.delete_policy(name)  # already gone: done

    # ------------------------------------------------------------------ KV secrets
    def test_kv_round_trip(self, backend: KeyBackend, janitor: VaultJanitor) -> None:
        path = janitor.secret(f"tenants/{fresh_name()}/database")

        assert backend.put_secret(path, {"user": "app", "password": "pa55-ü"}) == 1
        assert backend.put_secret(path, {"user": "app", "password": "next"}) == 2
        secret = backend.get_secret(path)

        assert (secret.path, secret.version) == (path, 2)
        assert secret.data == {"user": "app", "password": "next"}
        assert "next" not in repr(secret)
        backend.delete_secret(path)
        with pytest.raises(BackendNotFound):
            backend.get_secret(path)
        backend.delete_secret(path)  # already gone: done
