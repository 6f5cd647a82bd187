"""VaultKeys: the KeyBackend over OpenBao / Vault through hvac. The only package that imports hvac.

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

Areas live in their own modules (client, errors, health, signing, policies, kv); the class below
only puts them together and knows how it was configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.backends.vault.client import RELOGIN_MARGIN, SIGN_BATCH_SIZE
from controlplane.backends.vault.errors import BACKEND, HINT_START
from controlplane.backends.vault.health import CHECK_TIMEOUT, HealthMixin
from controlplane.backends.vault.kv import KvMixin
from controlplane.backends.vault.policies import (
    POLICY_CAS_ATTEMPTS,
    PoliciesMixin,
    retired_key_names,
    retired_keys_policy_hcl,
)
from controlplane.backends.vault.signing import SigningKeysMixin, parse_vault_signature, split_batches

if TYPE_CHECKING:
    from controlplane.backends.keys import KeyBackend
    from controlplane.settings import Settings

__all__ = [
    "BACKEND",
    "CHECK_TIMEOUT",
    "HINT_START",
    "POLICY_CAS_ATTEMPTS",
    "RELOGIN_MARGIN",
    "SIGN_BATCH_SIZE",
    "VaultKeys",
    "parse_vault_signature",
    "retired_key_names",
    "retired_keys_policy_hcl",
    "split_batches",
]


class VaultKeys(HealthMixin, SigningKeysMixin, PoliciesMixin, KvMixin):
    """KeyBackend over a Vault API server. Constructing it does no I/O; the first call connects."""

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
