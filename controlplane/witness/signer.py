"""The witness's Ed25519 key in its own OpenBao (transit), reached over plain HTTP with a token whose
policy (`witness_policy_hcl`) can sign with that one key and read its public half, nothing else."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from typing import Any

_NAME = re.compile(r"[A-Za-z0-9_-]+")


class SignerError(Exception):
    pass


def witness_policy_hcl(*, transit_mount: str = "transit", key: str = "witness") -> str:
    """The witness token's policy: sign with its key, read the key's public part. No other key, no
    key creation or rotation (the OpenBao's operator does those), no sys/, no KV."""
    for part in (*transit_mount.split("/"), key):
        if not _NAME.fullmatch(part):
            raise ValueError(f"{part!r}: letters, digits, '-' and '_' only")
    return (
        "# The witness: sign with its own key, read that key's public half. Nothing else.\n"
        f'path "{transit_mount}/sign/{key}" {{ capabilities = ["update"] }}\n'
        f'path "{transit_mount}/keys/{key}" {{ capabilities = ["read"] }}\n'
    )


class TransitSigner:
    """Signs with the latest version of one transit key, as read when first used."""

    def __init__(self, *, addr: str, token: str, mount: str, key: str, timeout: float = 10.0) -> None:
        self.addr, self.token, self.timeout = addr.rstrip("/"), token, timeout
        self.mount, self.key = mount, key
        self._version: int | None = None
        self._public: bytes | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the operator's configured OpenBao address
            f"{self.addr}/v1/{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            raise SignerError(f"OpenBao {method} {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SignerError(f"OpenBao at {self.addr}: {exc}") from None

    def public_key(self) -> bytes:
        if self._public is None:
            data = self._call("GET", f"{self.mount}/keys/{self.key}")["data"]
            if data.get("type") != "ed25519":
                raise SignerError(f"transit key {self.key} is {data.get('type')}, not ed25519")
            version = int(data["latest_version"])
            self._public = base64.b64decode(data["keys"][str(version)]["public_key"])
            self._version = version
        return self._public

    def sign(self, message: bytes) -> bytes:
        self.public_key()  # the version whose public key the witness publishes
        data = self._call(
            "POST",
            f"{self.mount}/sign/{self.key}",
            {"input": base64.b64encode(message).decode(), "key_version": self._version},
        )["data"]
        prefix = f"vault:v{self._version}:"
        signature = str(data["signature"])
        if not signature.startswith(prefix):
            raise SignerError(f"OpenBao signed with another key version: {signature[:12]}")
        return base64.b64decode(signature[len(prefix) :])
