"""Issue 12 item 4: each process's Vault token, against a real OpenBao dev server with the real
policies (controlplane.backends.keys): the console cannot sign with platform or tenant keys, read or
write policies, AppRole definitions, KV or sys/, or re-enable a retired key; it can only obtain one
organisation's identity, which signs with that organisation's key alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from controlplane.backends.keys import (
    AUDIT_KEY,
    CONSOLE_POLICY,
    PUBLISHER_POLICY,
    RETIRED_KEYS_POLICY,
    TRUST_ROOT_KEY,
    WITNESS_KEY,
    WORKER_POLICY,
    console_policy_hcl,
    publisher_policy_hcl,
    signing_key_name,
    tenant_policy_hcl,
    tenant_policy_name,
    worker_policy_hcl,
)
from controlplane.backends.vault import VaultKeys
from controlplane.documents.signer import OrgSigner
from controlplane.errors import BackendPermissionDenied
from controlplane.storage import Database
from tests.fixtures.documents import signing_caller
from tests.fixtures.vault import KV_MOUNT, TRANSIT_MOUNT, DevServer, DevVault, fresh_name


@dataclass(frozen=True)
class RoleTokens:
    addr: str
    console: str
    worker: str
    publisher: str
    tenant: str  # a tenant slug with key, policy and AppRole
    other: str  # a second tenant
    retired: str  # a tenant key made verify-only


def _token(server: DevServer, policy: str) -> str:
    created = server.api("POST", "auth/token/create", policies=[policy, RETIRED_KEYS_POLICY], ttl="1h")
    return str(created["auth"]["client_token"])


def _keys(addr: str, token: str) -> VaultKeys:
    return VaultKeys(addr=addr, token=token, transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT, timeout=10)


@pytest.fixture(scope="module")
def roles(vault_server: DevVault, vault_dev_server: DevServer, vault_keys: VaultKeys) -> Iterator[RoleTokens]:
    server = vault_dev_server
    for name, hcl in (
        (CONSOLE_POLICY, console_policy_hcl()),
        (WORKER_POLICY, worker_policy_hcl(transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT)),
        (PUBLISHER_POLICY, publisher_policy_hcl(transit_mount=TRANSIT_MOUNT)),
    ):
        server.api("PUT", f"sys/policies/acl/{name}", policy=hcl)
    tokens = {p: _token(server, p) for p in (CONSOLE_POLICY, WORKER_POLICY, PUBLISHER_POLICY)}
    worker = _keys(vault_server.addr, tokens[WORKER_POLICY])
    slugs = [fresh_name("rv"), fresh_name("rv"), fresh_name("rv")]
    for slug in slugs:  # what the worker does when it applies a tenant
        worker.ensure_signing_key(signing_key_name(slug))
        worker.ensure_policy(
            tenant_policy_name(slug),
            tenant_policy_hcl(slug, transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT),
        )
        worker.ensure_approle(tenant_policy_name(slug), [tenant_policy_name(slug)], token_ttl=600,
                              secret_id_ttl=600, secret_id_num_uses=0)
    worker.make_key_verify_only(signing_key_name(slugs[2]))
    publisher = _keys(vault_server.addr, tokens[PUBLISHER_POLICY])
    for key in (TRUST_ROOT_KEY, AUDIT_KEY):
        publisher.ensure_signing_key(key)
    # the same-Vault "witness" key of older deployments: no policy of the control plane signs with it
    vault_keys.ensure_signing_key(WITNESS_KEY)
    yield RoleTokens(vault_server.addr, tokens[CONSOLE_POLICY], tokens[WORKER_POLICY],
                     tokens[PUBLISHER_POLICY], *slugs)
    for slug in slugs:
        worker.delete_approle(tenant_policy_name(slug))
        worker.delete_policy(tenant_policy_name(slug))
        worker.delete_signing_key(signing_key_name(slug), force=True)
    for key in (TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY):  # the platform keys: only the full policy can
        vault_keys.delete_signing_key(key, force=True)
    worker.close()
    publisher.close()


def _status(addr: str, token: str, method: str, path: str, body: dict[str, object] | None = None) -> int:
    response = requests.request(method, f"{addr}/v1/{path}", headers={"X-Vault-Token": token},
                                json=body, timeout=10)
    return response.status_code


MESSAGE = {"input": "Zm9yZ2Vk"}  # base64 of "forged"


def _console_refused(r: RoleTokens) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("POST", f"{TRANSIT_MOUNT}/sign/{TRUST_ROOT_KEY}", MESSAGE),
        ("POST", f"{TRANSIT_MOUNT}/sign/{AUDIT_KEY}", MESSAGE),
        ("POST", f"{TRANSIT_MOUNT}/sign/{WITNESS_KEY}", MESSAGE),
        ("POST", f"{TRANSIT_MOUNT}/sign/{r.tenant}", MESSAGE),
        ("POST", f"{TRANSIT_MOUNT}/sign/{r.tenant}/sha2-256", MESSAGE),
        ("POST", f"{TRANSIT_MOUNT}/keys/{fresh_name('new')}", {"type": "ed25519"}),
        ("POST", f"{TRANSIT_MOUNT}/keys/{r.tenant}/rotate", None),
        # re-enabling a retired key: its config (deletion, min versions) is out of reach
        ("POST", f"{TRANSIT_MOUNT}/keys/{r.retired}/config", {"deletion_allowed": True}),
        ("POST", f"{TRANSIT_MOUNT}/keys/{TRUST_ROOT_KEY}/config", {"deletion_allowed": True}),
        ("GET", f"sys/policies/acl/{tenant_policy_name(r.tenant)}", None),
        ("PUT", f"sys/policies/acl/{tenant_policy_name(r.tenant)}", {"policy": 'path "*" {}'}),
        ("PUT", f"sys/policies/acl/{RETIRED_KEYS_POLICY}", {"policy": "# emptied"}),
        ("GET", "sys/policies/acl", None),
        ("POST", f"auth/approle/role/{tenant_policy_name(r.tenant)}",
         {"token_policies": [tenant_policy_name(r.tenant), tenant_policy_name(r.other)]}),
        ("POST", f"auth/approle/role/{fresh_name('evil')}", {"token_policies": ["default"]}),
        ("GET", f"auth/approle/role/{tenant_policy_name(r.tenant)}", None),
        ("POST", f"auth/approle/role/{tenant_policy_name(r.tenant)}/policies",
         {"token_policies": ["default"]}),
        ("GET", f"{KV_MOUNT}/data/tenants/{r.tenant}/_meta", None),
        ("POST", f"{KV_MOUNT}/data/tenants/{r.tenant}/x", {"data": {"a": "b"}}),
        ("GET", "sys/mounts", None),
        ("POST", f"sys/mounts/{fresh_name('m')}", {"type": "kv"}),
        ("POST", "auth/token/create", {"policies": ["default"]}),
    ]


def test_console_token_is_refused_every_power_but_obtaining_an_identity(roles: RoleTokens) -> None:
    refused = {
        f"{method} {path}": _status(roles.addr, roles.console, method, path, body)
        for method, path, body in _console_refused(roles)
    }
    assert refused == dict.fromkeys(refused, 403)


def test_console_adapter_cannot_sign_with_platform_or_tenant_keys(roles: RoleTokens) -> None:
    console = _keys(roles.addr, roles.console)
    try:
        for key in (TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY, signing_key_name(roles.tenant)):
            with pytest.raises(BackendPermissionDenied):
                console.sign(key, [b"forged"])
    finally:
        console.close()


def test_console_obtains_an_identity_that_signs_with_that_organisation_only(
    roles: RoleTokens, database: Database
) -> None:
    console = _keys(roles.addr, roles.console)
    with OrgSigner(console, database) as signer:
        caller = signing_caller(database, roles.tenant)  # one of the organisation's own tokens
        _checked, [signature] = signer.sign(caller, [b"an official letter"])
        assert signature.key_name == signing_key_name(roles.tenant)
        identity = signer.identity(caller)
        for key in (signing_key_name(roles.other), TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY):
            with pytest.raises(BackendPermissionDenied):
                identity.sign(key, [b"forged"])
        # a retired tenant's identity, obtained the same way, cannot sign: the key stays retired
        with pytest.raises(BackendPermissionDenied):
            signer.sign(signing_caller(database, roles.retired), [b"after decommission"])
    console.close()


def test_worker_token_cannot_sign_or_reconfigure_the_platform_keys(roles: RoleTokens) -> None:
    for key in (TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY, roles.tenant):
        assert _status(roles.addr, roles.worker, "POST", f"{TRANSIT_MOUNT}/sign/{key}", MESSAGE) == 403
    for key in (TRUST_ROOT_KEY, AUDIT_KEY):
        assert _status(roles.addr, roles.worker, "POST", f"{TRANSIT_MOUNT}/keys/{key}/rotate") == 403
        assert _status(roles.addr, roles.worker, "POST", f"{TRANSIT_MOUNT}/keys/{key}/config",
                       {"deletion_allowed": True}) == 403
        assert _status(roles.addr, roles.worker, "DELETE", f"{TRANSIT_MOUNT}/keys/{key}") == 403
        # the public keys stay readable
        assert _status(roles.addr, roles.worker, "GET", f"{TRANSIT_MOUNT}/keys/{key}") == 200
    assert _status(roles.addr, roles.worker, "PUT", f"sys/policies/acl/{CONSOLE_POLICY}",
                   {"policy": 'path "*" { capabilities = ["sudo"] }'}) == 403
    # what it is for: rotate a tenant key
    rotate = f"{TRANSIT_MOUNT}/keys/{roles.tenant}/rotate"
    assert _status(roles.addr, roles.worker, "POST", rotate) in (200, 204)


def test_publisher_token_signs_trust_lists_and_checkpoints_only(roles: RoleTokens) -> None:
    publisher = _keys(roles.addr, roles.publisher)
    try:
        for key in (TRUST_ROOT_KEY, AUDIT_KEY):
            [signature] = publisher.sign(key, [b"checkpoint"])
            assert signature.key_name == key
        for key in (signing_key_name(roles.tenant), signing_key_name(roles.other), WITNESS_KEY):
            with pytest.raises(BackendPermissionDenied):
                publisher.sign(key, [b"forged"])
        assert _status(roles.addr, roles.publisher, "POST",
                       f"{TRANSIT_MOUNT}/keys/{TRUST_ROOT_KEY}/config", {"deletion_allowed": True}) == 403
        assert _status(roles.addr, roles.publisher, "POST",
                       f"auth/approle/role/{tenant_policy_name(roles.tenant)}/secret-id") == 403
    finally:
        publisher.close()


def test_platform_key_names_match_the_modules_that_use_them() -> None:
    from controlplane.audit import checkpoints
    from controlplane.documents import trustlist

    assert (TRUST_ROOT_KEY, AUDIT_KEY, WITNESS_KEY) == (
        trustlist.ROOT_KEY_NAME, checkpoints.AUDIT_KEY, checkpoints.LEGACY_WITNESS_KEY)


def test_worker_publishes_and_sequences_only_through_the_publisher_identity(
    roles: RoleTokens, database: Database
) -> None:
    from controlplane.audit import record_event
    from controlplane.audit.sequencer import run_sequencer
    from controlplane.documents.publication import publish_trust_list

    worker, publisher = _keys(roles.addr, roles.worker), _keys(roles.addr, roles.publisher)
    try:
        with pytest.raises(BackendPermissionDenied):
            publish_trust_list(database, worker, initiator="test", force=True)
        assert publish_trust_list(database, publisher, initiator="test", force=True) is not None
        with database.transaction() as s:
            record_event(s, action="test:event", initiator="test", target="test:1")
        with pytest.raises(BackendPermissionDenied):
            run_sequencer(database, worker)
        _integrated, checkpoint = run_sequencer(database, publisher)
        assert checkpoint is not None and checkpoint.key_name == AUDIT_KEY
    finally:
        worker.close()
        publisher.close()
