"""The witness runs as its own process from its own state directory (`controlplane witness init`,
`trust-log`, `serve`), with no control-plane settings at all: a settings file that does not exist
would stop any command that read one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from controlplane.tlog.protocol import add_checkpoint
from tests.fixtures.vault import closed_port
from tests.fixtures.witness import LocalKeyLog, WitnessBao


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlplane", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_witness_serves_from_its_state_dir_without_control_plane_settings(
    witness_bao: WitnessBao, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "VAULT_"))}
    env |= {"CONTROLPLANE_CONFIG": str(tmp_path / "no-such-controlplane.toml"),
            "WITNESS_VAULT_TOKEN": witness_bao.token}
    state = tmp_path / "witness"
    log = LocalKeyLog()
    init = _cli("witness", "init", "--state-dir", str(state), "--name", "agency.test/w",
                "--vault-addr", witness_bao.addr, env=env)
    assert init.returncode == 0, init.stderr
    trusted = _cli("witness", "trust-log", "--state-dir", str(state), log.verifier.vkey(), env=env)
    assert trusted.returncode == 0 and log.origin in trusted.stdout, trusted.stderr
    assert _cli("witness", "trust-log", "--state-dir", str(state), "not-a-key", env=env).returncode == 2
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "controlplane", "witness", "serve", "--state-dir", str(state),
               "--port", str(port)]
    with (tmp_path / "witness.log").open("wb") as out:
        serve = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        vkey = requests.get(f"{url}/vkey", timeout=5).text.strip()
        assert vkey.startswith("agency.test/w+") and (state / "witness.vkey").read_text().strip() == vkey
        answer = add_checkpoint(url, 0, [], log.note(LocalKeyLog.leaves("p", 3)))
        assert answer.status == 200 and answer.body.startswith("\u2014 agency.test/w ")
        assert '"size": 3' in (state / "state.json").read_text()
    finally:
        serve.terminate()
        serve.wait(timeout=10)
