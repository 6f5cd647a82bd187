"""Signing identities: each organisation signs through its own AppRole, Vault's policy keeps it to
its own key, and a replaced or forgotten identity's secret_id is destroyed in Vault."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controlplane.backends.keys import KeyBackend, SecretId, signing_key_name, tenant_policy_name
from controlplane.documents.signer import OrgSigner
from controlplane.errors import BackendPermissionDenied
from controlplane.storage import Database
from tests.fixtures.documents import prepare_signing_org, signing_caller
from tests.fixtures.vault import VaultJanitor

pytestmark = pytest.mark.integration


@pytest.fixture
def janitor(vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]) -> VaultJanitor:
    return make_vault_janitor(vault_keys)


@pytest.fixture
def org(vault_keys: KeyBackend, janitor: VaultJanitor) -> str:
    return prepare_signing_org(vault_keys, janitor)


def test_vault_policy_refuses_an_org_identity_signing_with_another_orgs_key(
    signer: OrgSigner, org: str, vault_keys: KeyBackend, janitor: VaultJanitor, database: Database
) -> None:
    other = prepare_signing_org(vault_keys, janitor)
    caller = signing_caller(database, org)
    identity = signer.identity(caller)
    assert identity.sign(signing_key_name(org), [b"mine"])[0].key_name == org
    # Our code never asks for this; the point is that Vault itself says 403.
    with pytest.raises(BackendPermissionDenied) as caught:
        identity.sign(signing_key_name(other), [b"not mine"])
    assert caught.value.status == 403
    assert signer.identity(caller) is identity  # cached


def test_org_identities_are_cached_until_shortly_before_the_secret_id_expires(
    vault_keys: KeyBackend, janitor: VaultJanitor, database: Database
) -> None:
    org = prepare_signing_org(vault_keys, janitor, secret_id_ttl=600)
    now = [1000.0]
    signer = OrgSigner(IssuedSecretsRecorder(vault_keys), database, clock=lambda: now[0])
    caller = signing_caller(database, org)
    first = signer.identity(caller)
    now[0] += 539  # the test AppRole's secret_id lives 600 s: replaced after 90 % of that
    assert signer.identity(caller) is first
    now[0] += 2
    second = signer.identity(caller)
    assert second is not first
    assert second.sign(signing_key_name(org), [b"still works"])[0].key_version == 1
    signer.forget(org)
    # Each replaced or forgotten identity's secret_id was destroyed in Vault, not left to expire.
    role = tenant_policy_name(org)
    role_id = vault_keys.read_role_id(role)
    issued = signer.keys.issued  # type: ignore[attr-defined]
    assert len(issued) == 2
    for secret in issued:
        with pytest.raises(BackendPermissionDenied):
            vault_keys.login_approle(role_id, secret.value)


class IssuedSecretsRecorder:
    """The real backend, remembering the secret_ids it issued (to try them again afterwards)."""

    def __init__(self, keys: KeyBackend) -> None:
        self._keys = keys
        self.issued: list[SecretId] = []

    def issue_secret_id(self, role_name: str) -> SecretId:
        secret = self._keys.issue_secret_id(role_name)
        self.issued.append(secret)
        return secret

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keys, name)
