"""ACL policies (the retired-keys policy included) and AppRoles: what tokens may do, and who gets one."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import hvac

from controlplane.backends.keys import RETIRED_KEYS_POLICY, AppRole, SecretId
from controlplane.backends.vault.client import VaultClient, logger
from controlplane.backends.vault.errors import BACKEND
from controlplane.backends.vault.names import NAME, check_key_name, check_name
from controlplane.errors import BackendNotFound, PermanentError, TemporaryError

POLICY_CAS_ATTEMPTS = 5


class PoliciesMixin(VaultClient):
    # ------------------------------------------------------------------------------- policies
    def ensure_policy(self, name: str, hcl: str) -> bool:
        check_name(name, "policy")
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
        check_name(name, "policy")
        data = self._call(f"read policy {name}", lambda c: c.sys.read_acl_policy(name))["data"]
        return str(data["policy"])

    def delete_policy(self, name: str) -> None:
        check_name(name, "policy")
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
        check_name(role_name, "role")
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
        check_name(role_name, "role")
        response = self._call(
            f"read role_id of AppRole {role_name}",
            lambda c: c.auth.approle.read_role_id(role_name, mount_point=self.approle_mount),
        )
        return str(response["data"]["role_id"])

    def issue_secret_id(self, role_name: str) -> SecretId:
        check_name(role_name, "role")
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

    def destroy_secret_id(self, role_name: str, accessor: str) -> None:
        check_name(role_name, "role")

        def destroy(client: Any) -> bool:
            try:
                client.auth.approle.destroy_secret_id_accessor(
                    role_name, accessor, mount_point=self.approle_mount)
            except hvac.exceptions.InternalServerError as exc:
                # Vault and OpenBao answer 500 for an accessor they no longer hold (expired or
                # destroyed before): unusable either way, which is what the caller asked for.
                if "failed to find accessor entry" in str(exc):
                    return False
                raise
            return True

        try:
            destroyed = self._call(f"destroy a secret_id of AppRole {role_name}", destroy)
        except BackendNotFound:
            return  # the role itself is gone
        if destroyed:
            logger.info("secret_id destroyed for AppRole %s (accessor %s)", role_name, accessor)

    def delete_approle(self, role_name: str) -> None:
        check_name(role_name, "role")
        self._call(
            f"delete AppRole {role_name}",
            lambda c: c.auth.approle.delete_role(role_name, mount_point=self.approle_mount),
        )


def retired_keys_policy_hcl(names: frozenset[str] | set[str], *, transit_mount: str) -> str:
    """The deny rules that make each named key verify-only (see the package docstring)."""
    lines = [
        "# Verify-only (decommissioned) signing keys: no signing, rotation, configuration or trim.",
        "# Written by the control plane (VaultKeys.make_key_verify_only); every token carries it.",
    ]
    for name in sorted(names):
        check_key_name(name)
        for path in ("sign/{}", "sign/{}/*", "keys/{}/rotate", "keys/{}/config", "keys/{}/trim"):
            lines.append(f'path "{transit_mount}/{path.format(name)}" {{ capabilities = ["deny"] }}')
    return "\n".join(lines) + "\n"


def retired_key_names(hcl: str, *, transit_mount: str) -> frozenset[str]:
    """The key names `retired_keys_policy_hcl` wrote into `hcl`."""
    pattern = re.compile(rf'^path "{re.escape(transit_mount)}/sign/([^"/*]+)"', re.MULTILINE)
    return frozenset(name for name in pattern.findall(hcl) if NAME.match(name))
