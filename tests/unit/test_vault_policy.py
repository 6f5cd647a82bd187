"""The pure parts of the keys port and the Vault adapter: policies, names, batching, signatures."""

from __future__ import annotations

import base64
import re

import pytest

from controlplane.backends.keys import (
    RETIRED_KEYS_POLICY,
    controlplane_policy_hcl,
    signing_key_name,
    tenant_policy_hcl,
    tenant_policy_name,
)
from controlplane.backends.vault import (
    parse_vault_signature,
    retired_key_names,
    retired_keys_policy_hcl,
    split_batches,
)
from controlplane.errors import InvalidInput, PermanentError

RULE = re.compile(r'^path "([^"]+)" \{ capabilities = \[([^\]]*)\] \}', re.MULTILINE)


def rules(hcl: str) -> dict[str, set[str]]:
    """path -> capabilities of the one-line rules in `hcl`."""
    return {path: set(re.findall(r'"(\w+)"', caps)) for path, caps in RULE.findall(hcl)}


def allows(hcl: str, path: str, capability: str) -> bool:
    """Vault's matching for the globs we use: exact path, or a prefix when the rule ends in '*'."""
    for rule, caps in rules(hcl).items():
        matched = path.startswith(rule[:-1]) if rule.endswith("*") else path == rule
        if matched and capability in caps:
            return True
    return False


def policy(slug: str = "health") -> str:
    return tenant_policy_hcl(slug, transit_mount="transit", kv_mount="kv")


class TestTenantPolicy:
    def test_signs_with_its_own_keys_only(self) -> None:
        hcl = policy("health")

        for path in ("transit/sign/health", "transit/sign/health/sha2-256", "transit/sign/health.mail"):
            assert allows(hcl, path, "update"), path
        for path in (
            "transit/sign/health-lab",  # another tenant whose slug starts the same
            "transit/sign/healthy",
            "transit/sign/finance",
            "transit/sign/heal",
        ):
            assert not allows(hcl, path, "update"), path

    def test_reads_its_own_public_keys_and_nothing_else_of_transit(self) -> None:
        hcl = policy("health")

        assert allows(hcl, "transit/keys/health", "read")
        assert allows(hcl, "transit/export/public-key/health", "read")
        assert allows(hcl, "transit/export/public-key/health/2", "read")
        assert not allows(hcl, "transit/keys/health-lab", "read")
        for path, capability in (
            ("transit/keys/health", "update"),  # create
            ("transit/keys/health/rotate", "update"),
            ("transit/keys/health/config", "update"),
            ("transit/keys/health", "delete"),
            ("transit/verify/health", "update"),  # verification is offline
            ("transit/export/signing-key/health", "read"),
            ("transit/keys", "list"),
        ):
            assert not allows(hcl, path, capability), (path, capability)

    def test_uses_its_own_kv_path_only(self) -> None:
        hcl = policy("health")

        for capability in ("create", "read", "update", "delete"):
            assert allows(hcl, "kv/data/tenants/health/db", capability)
        assert not allows(hcl, "kv/data/tenants/health-lab/db", "read")
        assert not allows(hcl, "kv/data/tenants/finance/db", "read")
        assert not allows(hcl, "kv/metadata/tenants/health/db", "delete")
        assert not any(path.startswith("sys/") or path.startswith("auth/") for path in rules(hcl))

    def test_uses_the_mounts_it_is_given(self) -> None:
        hcl = tenant_policy_hcl("health", transit_mount="keys/prod", kv_mount="secrets")

        assert allows(hcl, "keys/prod/sign/health", "update")
        assert allows(hcl, "secrets/data/tenants/health/x", "read")
        assert not allows(hcl, "transit/sign/health", "update")

    @pytest.mark.parametrize(
        "slug",
        ["", "Health", "health.mail", "health/x", "health*", "-health", "health-", "a" * 64, "he alth"],
    )
    def test_refuses_a_slug_that_could_widen_the_globs(self, slug: str) -> None:
        with pytest.raises(InvalidInput):
            policy(slug)

    @pytest.mark.parametrize("mount", ["", "/transit", "transit/", "trans*it", 'tr"ansit'])
    def test_refuses_a_strange_mount(self, mount: str) -> None:
        with pytest.raises(InvalidInput):
            tenant_policy_hcl("health", transit_mount=mount, kv_mount="kv")


class TestNames:
    def test_key_and_policy_names(self) -> None:
        assert signing_key_name("health") == "health"
        assert signing_key_name("health", "mail") == "health.mail"
        assert tenant_policy_name("health") == "tenant-health"

    @pytest.mark.parametrize("purpose", ["", "Mail", "mail.x", "mail/x", "mail*"])
    def test_refuses_a_strange_purpose(self, purpose: str) -> None:
        with pytest.raises(InvalidInput):
            signing_key_name("health", purpose)


class TestControlPlanePolicy:
    def test_manages_keys_tenant_policies_roles_and_secrets_but_no_more(self) -> None:
        hcl = controlplane_policy_hcl(transit_mount="transit", kv_mount="kv")

        assert allows(hcl, "transit/keys/health", "create")
        assert allows(hcl, "transit/sign/health", "update")
        assert allows(hcl, "sys/policies/acl/tenant-health", "update")
        assert allows(hcl, f"sys/policies/acl/{RETIRED_KEYS_POLICY}", "update")
        assert allows(hcl, "auth/approle/role/health", "create")
        assert allows(hcl, "kv/data/tenants/health/db", "read")
        for path, capability in (
            ("sys/policies/acl/controlplane", "update"),
            ("sys/policies/acl/default", "update"),
            (f"sys/policies/acl/{RETIRED_KEYS_POLICY}", "delete"),
            ("sys/mounts/transit", "update"),
            ("sys/audit/file", "update"),
            ("auth/token/create", "update"),
            ("transit/export/signing-key/health", "read"),
        ):
            assert not allows(hcl, path, capability), (path, capability)


class TestRetiredKeysPolicy:
    def test_round_trip_and_deny_rules(self) -> None:
        hcl = retired_keys_policy_hcl({"health", "finance.mail"}, transit_mount="transit")

        assert retired_key_names(hcl, transit_mount="transit") == {"health", "finance.mail"}
        assert rules(hcl)["transit/sign/health"] == {"deny"}
        for path in ("sign/health/*", "keys/health/rotate", "keys/health/config", "keys/health/trim"):
            assert rules(hcl)[f"transit/{path}"] == {"deny"}
        # Public keys stay readable: nothing denies the key itself or its export.
        assert "transit/keys/health" not in rules(hcl)
        assert not any("export" in path for path in rules(hcl))

    def test_empty_and_other_mounts(self) -> None:
        empty = retired_keys_policy_hcl(set(), transit_mount="transit")
        assert retired_key_names(empty, transit_mount="transit") == set()
        hcl = retired_keys_policy_hcl({"health"}, transit_mount="transit")
        assert retired_key_names(hcl, transit_mount="other") == set()

    def test_refuses_a_name_that_is_a_glob(self) -> None:
        with pytest.raises(PermanentError):
            retired_keys_policy_hcl({"health*"}, transit_mount="transit")


class TestBatches:
    @pytest.mark.parametrize(
        ("count", "size", "expected"),
        [
            (0, 400, []),
            (1, 400, [1]),
            (400, 400, [400]),
            (1200, 400, [400, 400, 400]),
            (1201, 400, [400, 400, 400, 1]),
        ],
    )
    def test_sizes(self, count: int, size: int, expected: list[int]) -> None:
        assert [len(b) for b in split_batches(list(range(count)), size)] == expected

    def test_keeps_order(self) -> None:
        items = list(range(1001))
        assert [x for batch in split_batches(items, 250) for x in batch] == items

    def test_refuses_a_size_below_one(self) -> None:
        with pytest.raises(ValueError):
            list(split_batches([1], 0))


class TestVaultSignature:
    def test_standard_base64(self) -> None:
        raw = bytes(range(64))
        assert parse_vault_signature("vault:v3:" + base64.b64encode(raw).decode()) == (3, raw)

    def test_jws_base64url_without_padding(self) -> None:
        raw = bytes(range(190, 254))
        body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert parse_vault_signature(f"vault:v12:{body}") == (12, raw)

    @pytest.mark.parametrize("text", ["", "vault:1:AAAA", "vault:vx:AAAA", "other:v1:AAAA", "vault:v1:A!A"])
    def test_refuses_anything_else(self, text: str) -> None:
        with pytest.raises(PermanentError):
            parse_vault_signature(text)
