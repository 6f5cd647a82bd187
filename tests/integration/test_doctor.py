"""`controlplane doctor` against the real services, and with Keystone really stopped."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.settings import REPO_ROOT
from tests.fixtures.app import run_controlplane

pytestmark = pytest.mark.integration

DEVCLOUD = str(REPO_ROOT / "scripts" / "devcloud")


def _doctor(
    instance: Path, clouds_yaml: Path, vault_addr: str, token: str
) -> subprocess.CompletedProcess[str]:
    env = {
        "CONTROLPLANE_INSTANCE_PATH": str(instance),
        "CONTROLPLANE_CLOUDS_YAML": str(clouds_yaml),
        "CONTROLPLANE_VAULT_ADDR": vault_addr,
        "CONTROLPLANE_VAULT_TOKEN": token,
    }
    upgrade = run_controlplane("db", "upgrade", env=env, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    return run_controlplane("doctor", env=env, timeout=120)


@pytest.fixture
def keystone_stopped() -> Iterator[None]:
    subprocess.run([DEVCLOUD, "stop", "keystone"], check=True, capture_output=True, timeout=120)
    try:
        yield
    finally:
        subprocess.run([DEVCLOUD, "start", "keystone"], check=True, capture_output=True, timeout=300)


def test_doctor_passes_with_every_service_up(
    tmp_path: Path, clouds_yaml: Path, vault_server: object, controlplane_token: str
) -> None:
    result = _doctor(tmp_path, clouds_yaml, vault_server.addr, controlplane_token)  # type: ignore[attr-defined]
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in (
        "database",
        "openstack:keystone",
        "openstack:neutron",
        "openstack:nova",
        "openstack:placement",
        "openstack:glance",
        "openstack:cinder",
        "vault",
        "ansible",
    ):
        assert any(line.startswith("ok") and f" {name} " in line for line in lines), name


def test_doctor_names_a_stopped_keystone_and_fails(
    tmp_path: Path, clouds_yaml: Path, vault_server: object, controlplane_token: str, keystone_stopped: None
) -> None:
    result = _doctor(tmp_path, clouds_yaml, vault_server.addr, controlplane_token)  # type: ignore[attr-defined]
    assert result.returncode == 1
    keystone = next(line for line in result.stdout.splitlines() if " openstack:keystone " in line)
    assert keystone.startswith("FAIL")
    assert "127.0.0.1:5000" in keystone
    assert "fix:" in result.stdout
    assert "openstack:keystone" in result.stderr  # the summary names it too
    assert "Traceback" not in result.stdout + result.stderr
