"""Issue 12 item 1 (the verifier's own OS user): when the worker runs as root on PostgreSQL, the
playbook creates the verification service's OS user, which runs it, owns only its own directory
(outside instance/) and cannot read the control plane's files, and logs in with its own database role."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from controlplane.backends.ansible import AnsibleAutomation
from controlplane.settings import REPO_ROOT, Settings
from controlplane.storage import Database
from controlplane.tenancy.services import (
    VERIFICATION_PLAYBOOK,
    service_dir,
    service_os_user,
    verification_extravars,
)
from controlplane.tenancy.verifier_db import PASSWORD_FILE, drop_verifier, grant_verifier
from tests.fixtures.vault import closed_port

pytestmark = pytest.mark.integration

SYSTEM_PYTHON = Path("/usr/bin/python3")


def _system_python_matches() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    done = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() == str(sys.version_info[:2])


@pytest.fixture
def os_user_settings(settings: Settings, database: Database) -> Iterator[Settings]:
    if os.geteuid() != 0 or database.engine.dialect.name != "postgresql" or not shutil.which("runuser"):
        pytest.skip("the verifier's own OS user needs root and PostgreSQL")
    if not _system_python_matches():
        pytest.skip("needs a system Python of this version that another user can run")
    home = Path(tempfile.mkdtemp(prefix="cp-verify-test-", dir="/tmp"))  # out of pytest's 0700 tmp
    configured = settings.replace(verification_home=str(home), verification_os_user="cp-verify",
                                  verify_rate_per_minute=0)
    grant_verifier(database, configured)
    try:
        yield configured
    finally:
        drop_verifier(database, configured)
        shutil.rmtree(home, ignore_errors=True)


def test_verifier_runs_as_its_own_os_user_that_cannot_read_the_control_planes_files(
    os_user_settings: Settings, tmp_path: Path
) -> None:
    settings = os_user_settings
    assert service_os_user(settings) == "cp-verify"
    directory = service_dir(settings, "t-osuser", "verification-service")
    extravars = {
        **verification_extravars(settings, directory=directory, port=closed_port(), workers=1, threads=2),
        # this test interpreter lives under /root; the same version from the system is readable by all
        "python": str(SYSTEM_PYTHON),
    }
    automation = AnsibleAutomation(playbooks_dir=REPO_ROOT / "playbooks", runs_dir=tmp_path / "runs",
                                   keep_artifacts=2, timeout=300)
    try:
        result = automation.run(VERIFICATION_PLAYBOOK, extravars=extravars, timeout=240)
        assert result.ok, result.summary
        pid = int((directory / "run" / "gunicorn.pid").read_text().strip())
        uid = int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("Uid:")).split()[1])
        assert pwd.getpwuid(uid).pw_name == "cp-verify"
        assert directory.stat().st_uid == uid and oct(directory.stat().st_mode & 0o777) == oct(0o700)
        ready = requests.get(f"http://127.0.0.1:{extravars['port']}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        verdict = requests.get(f"http://127.0.0.1:{extravars['port']}/api/v1/verify/AAAA", timeout=10)
        assert verdict.json()["verdict"] == "malformed"
        # the worker's files are out of its reach: its database password, the instance folder
        secret = Path(settings.instance_path) / PASSWORD_FILE
        assert secret.exists()
        for path in (secret, Path(settings.instance_path)):
            tried = subprocess.run(["runuser", "-u", "cp-verify", "--", "test", "-r", str(path)], check=False)
            assert tried.returncode != 0, f"cp-verify can read {path}"
    finally:
        absent = {**extravars, "state": "absent"}
        removed = automation.run(VERIFICATION_PLAYBOOK, extravars=absent, timeout=120)
        assert removed.ok, removed.summary
