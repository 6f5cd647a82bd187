"""scripts/devvault writes one least-privilege token per role (issue 12): console, worker and
publisher, each with exactly its policy from controlplane.backends.keys and the retired-keys policy."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from controlplane.backends.keys import (
    CONSOLE_POLICY,
    PUBLISHER_POLICY,
    RETIRED_KEYS_POLICY,
    TRUST_ROOT_KEY,
    WORKER_POLICY,
)
from controlplane.settings import REPO_ROOT
from tests.fixtures.vault import free_port_pair

pytestmark = pytest.mark.integration


@pytest.fixture
def devvault(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    base = tmp_path / "devvault"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(DEVVAULT_DEV_BASE=str(base), DEVVAULT_PORT=str(free_port_pair()), PYTHONPATH=str(REPO_ROOT))
    script = str(REPO_ROOT / "scripts" / "devvault")
    up = subprocess.run([script, "up", "--dev"], env=env, capture_output=True, text=True, timeout=120,
                        check=False)
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        yield f"http://127.0.0.1:{env['DEVVAULT_PORT']}", base
    finally:
        subprocess.run([script, "down", "--dev", "--purge"], env=env, capture_output=True, timeout=60,
                       check=False)


def test_devvault_writes_one_least_privilege_token_per_role(devvault: tuple[str, Path]) -> None:
    addr, base = devvault
    expected = {"console": CONSOLE_POLICY, "worker": WORKER_POLICY, "publisher": PUBLISHER_POLICY}
    tokens = {}
    for role, policy in expected.items():
        path = base / f"{role}-token"
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        tokens[role] = path.read_text().strip()
        looked_up = requests.get(f"{addr}/v1/auth/token/lookup-self",
                                 headers={"X-Vault-Token": tokens[role]}, timeout=10)
        policies = sorted(looked_up.json()["data"]["policies"])
        assert policies == sorted(["default", policy, RETIRED_KEYS_POLICY])
    assert not (base / "controlplane-token").exists()
    assert tokens["worker"] in (base / "env").read_text()  # the CLI acts as the worker
    sign = f"{addr}/v1/transit/sign/{TRUST_ROOT_KEY}"
    for role in ("console", "worker"):
        refused = requests.post(sign, json={"input": "eA=="}, headers={"X-Vault-Token": tokens[role]},
                                timeout=10)
        assert refused.status_code == 403, role
