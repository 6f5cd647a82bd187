"""`KeyBackendContract` run against `VaultKeys` on a `bao server -dev`, plus what is specific to Vault."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from controlplane.backends.keys import (
    RETIRED_KEYS_POLICY,
    KeyBackend,
)
from controlplane.backends.vault import VaultKeys
from controlplane.errors import (
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)
from controlplane.settings import Settings
from tests.contract.keys_contract import KeyBackendContract, Tenant
from tests.fixtures.vault import (
    KV_MOUNT,
    TRANSIT_MOUNT,
    DevServer,
    DevVault,
    VaultJanitor,
    closed_port,
    fresh_name,
)

pytestmark = [pytest.mark.integration, pytest.mark.contract]


class TestVaultKeys(KeyBackendContract):
    """The contract on `VaultKeys` with the control plane's least-privilege token, and Vault's own."""

    @pytest.fixture
    def backend(self, vault_keys: VaultKeys) -> KeyBackend:
        return vault_keys

    @pytest.fixture
    def unreachable_backend(self) -> KeyBackend:
        return VaultKeys(addr=f"http://127.0.0.1:{closed_port()}", token="s.unused", timeout=2)

    @pytest.fixture
    def mounts(self) -> dict[str, str]:
        return {"transit_mount": TRANSIT_MOUNT, "kv_mount": KV_MOUNT}

    # ------------------------------------------------------------------ least privilege
    def test_control_plane_token_is_not_root_and_cannot_rewrite_its_own_policy(
        self, vault_keys: VaultKeys
    ) -> None:
        auth = vault_keys.check()[1]
        assert "controlplane" in auth.detail and "root" not in auth.detail

        for name in ("controlplane", "default"):
            with pytest.raises(BackendPermissionDenied):
                vault_keys.ensure_policy(name, 'path "*" { capabilities = ["sudo"] }')
            with pytest.raises(BackendPermissionDenied):
                vault_keys.read_policy(name)

    def test_a_token_without_the_retired_keys_policy_fails_check(
        self, vault_server: DevVault, vault_dev_server: DevServer
    ) -> None:
        token = vault_dev_server.api("POST", "auth/token/create", policies=["controlplane"], ttl="5m")
        keys = VaultKeys(addr=vault_server.addr, token=token["auth"]["client_token"])

        auth = keys.check()[1]

        assert not auth.ok
        assert RETIRED_KEYS_POLICY in auth.hint

    # ------------------------------------------------------------------ wiring and errors
    def test_constructing_does_no_io_and_settings_choose_approle(
        self, vault_keys: VaultKeys, janitor: VaultJanitor, vault_server: DevVault
    ) -> None:
        VaultKeys(addr=f"http://127.0.0.1:{closed_port()}", token="s.x")  # nothing listens: fine
        name = janitor.approle(fresh_name("role"))
        role = vault_keys.ensure_approle(name, [], token_ttl=60, secret_id_ttl=60, secret_id_num_uses=0)
        secret_id = vault_keys.issue_secret_id(name)
        settings = Settings(
            vault_addr=vault_server.addr,
            vault_token=vault_server.root_token,  # ignored: AppRole wins when configured
            vault_role_id=role.role_id,
            vault_secret_id=secret_id.value,
        )

        keys = VaultKeys.from_settings(settings)

        auth = keys.check()[1]
        assert auth.ok and auth.detail.startswith("AppRole login")
        assert "root" not in auth.detail
        assert vault_server.root_token not in repr(keys) and secret_id.value not in repr(keys)

    def test_a_bad_token_is_permission_denied_with_a_clear_message(
        self, vault_server: DevVault
    ) -> None:
        keys = VaultKeys(addr=vault_server.addr, token="s.not-a-real-token")

        server, auth = keys.check()
        assert server.ok and not auth.ok
        assert "permission denied" in auth.detail and auth.hint
        with pytest.raises(BackendPermissionDenied) as caught:
            keys.get_signing_key("anything")
        assert "permission denied" in caught.value.message
        assert "s.not-a-real-token" not in caught.value.message

    def test_vault_token_in_the_environment_is_never_used(
        self, vault_server: DevVault, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("VAULT_TOKEN", vault_server.root_token)  # hvac would pick this up

        keys = VaultKeys(addr=vault_server.addr)

        with pytest.raises(BackendPermissionDenied):
            keys.get_signing_key("anything")

    def test_sealed_vault_checks_not_ok_and_calls_are_temporary(
        self, start_vault_server: Callable[[], DevServer]
    ) -> None:
        server = start_vault_server()
        keys = VaultKeys(addr=server.addr, token=server.root_token)
        assert all(c.ok for c in keys.check())
        server.api("PUT", "sys/seal")

        [check] = keys.check()
        assert not check.ok and "sealed" in check.detail and "unseal" in check.hint
        with pytest.raises(TemporaryError, match="sealed"):
            keys.ensure_signing_key("anything")

    def test_ensure_refuses_a_key_of_another_type(
        self, vault_keys: VaultKeys, vault_dev_server: DevServer
    ) -> None:
        name = fresh_name("p256")
        vault_dev_server.api("POST", f"{TRANSIT_MOUNT}/keys/{name}", type="ecdsa-p256")
        try:
            with pytest.raises(PermanentError, match="not ed25519"):
                vault_keys.ensure_signing_key(name)
        finally:
            vault_dev_server.api("POST", f"{TRANSIT_MOUNT}/keys/{name}/config", deletion_allowed=True)
            vault_dev_server.api("DELETE", f"{TRANSIT_MOUNT}/keys/{name}")

    def test_concurrent_decommissions_keep_each_other(
        self, vault_keys: VaultKeys, janitor: VaultJanitor
    ) -> None:
        names = [vault_keys.ensure_signing_key(janitor.key(fresh_name("key"))).name for _ in range(4)]
        errors: list[BaseException] = []

        def retire(name: str) -> None:
            try:
                vault_keys.make_key_verify_only(name)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=retire, args=(n,)) for n in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert all(vault_keys.is_key_verify_only(n) for n in names)
        for name in names:
            with pytest.raises(BackendPermissionDenied):
                vault_keys.sign(name, [b"x"])

    def test_no_token_or_secret_id_in_logs_errors_or_reprs(
        self,
        vault_keys: VaultKeys,
        make_tenant: Callable[..., Tenant],
        controlplane_token: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        tenant = make_tenant()
        secret_id = vault_keys.issue_secret_id(tenant.slug)
        login = vault_keys.login_approle(tenant.role_id, secret_id.value)
        login.sign(tenant.key.name, [b"x"])
        failures: list[Any] = []
        for call in (
            lambda: login.sign(fresh_name("other"), [b"x"]),
            lambda: vault_keys.login_approle(tenant.role_id, "wrong-" + secret_id.value),
        ):
            with pytest.raises(PermanentError) as caught:
                call()
            failures.append(caught.value)

        tenant_token = login._client.token  # type: ignore[attr-defined]
        assert tenant_token
        shown = caplog.text + "".join(f"{e} {e.message} {e.hint}" for e in failures)
        shown += repr(login) + repr(vault_keys) + repr(secret_id)
        for secret in (controlplane_token, secret_id.value, tenant_token):
            assert secret not in shown
        assert "secret_id issued" in caplog.text  # the logs were captured at all
