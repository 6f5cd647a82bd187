"""Issue 12 item 4 (scripts/run stops what it started): the worker stops within a few seconds of
SIGTERM even while OpenStack is unreachable, its retries and backoff sleeps included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.settings import REPO_ROOT, load_settings
from controlplane.storage import Database
from controlplane.tenancy.verifier_db import drop_verifier
from tests.fixtures.app import run_controlplane
from tests.fixtures.vault import DevVault, closed_port

pytestmark = pytest.mark.integration

STOP_WITHIN = 5.0  # seconds from SIGTERM to exit


@pytest.fixture(params=["refused", "silent"])
def keystone_port(request: pytest.FixtureRequest) -> Iterator[int]:
    """OpenStack down: a closed port (refused at once), or one that accepts and never answers (each
    call hangs until its timeout, as behind a dead load balancer)."""
    if request.param == "refused":
        yield closed_port()
        return
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(128)  # the kernel completes connections; nobody ever reads or answers
        yield int(silent.getsockname()[1])


def _down_cloud(tmp_path: Path, port: int) -> Path:
    """A clouds.yaml whose Keystone is that port."""
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n  down:\n    auth:\n"
        f"      auth_url: http://127.0.0.1:{port}/v3\n"
        "      username: admin\n      password: unused\n      project_name: admin\n"
        "      user_domain_name: Default\n      project_domain_name: Default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n",
        encoding="utf-8",
    )
    return path


def test_worker_stops_on_sigterm_while_openstack_is_unreachable(
    tmp_path: Path, database_url: str, vault_server: DevVault, controlplane_token: str, keystone_port: int
) -> None:
    env = {
        "CONTROLPLANE_INSTANCE_PATH": str(tmp_path / "instance"),
        "CONTROLPLANE_DATABASE_URL": database_url,
        "CONTROLPLANE_CLOUDS_YAML": str(_down_cloud(tmp_path, keystone_port)),
        "CONTROLPLANE_OS_CLOUD": "down",
        "CONTROLPLANE_VAULT_ADDR": vault_server.addr,
        "CONTROLPLANE_VAULT_TOKEN": controlplane_token,
    }
    assert run_controlplane("db", "upgrade", env=env).returncode == 0
    registered = run_controlplane("tenants", "register", str(REPO_ROOT / "tenants"), env=env)
    assert registered.returncode == 0, registered.stderr
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "VAULT_", "OS_"))}
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "worker", "--interval", "5", "--concurrency", "4"],
        env={**clean, **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while b"observing" not in (tmp_path / "worker.log").read_bytes() and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        time.sleep(1)  # well into a pass: tenants retrying refused OpenStack calls
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = worker.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()
        database = Database(database_url)  # the worker made the verifier's role (PostgreSQL): drop it
        drop_verifier(database, load_settings({"instance_path": env["CONTROLPLANE_INSTANCE_PATH"],
                                               "database_url": database_url}, environ={}))
        database.dispose()
    text = (tmp_path / "worker.log").read_text(errors="replace")
    assert took < STOP_WITHIN, f"worker needed {took:.1f} s to stop:\n{text[-2000:]}"
    assert code == 0, text[-2000:]
