"""AnsibleAutomation: runs one playbook per call with ansible-runner, in a private data dir."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible_runner import AnsibleRunnerException, Runner, RunnerConfig

from controlplane.backends.ansible.artifacts import keep_artifacts
from controlplane.backends.ansible.events import EventCollector, summary
from controlplane.backends.ansible.hygiene import (
    SYSTEM_PATH,
    localhost_inventory,
    run_environment,
    secret_extravar_values,
    secret_scrubber,
    write_private,
)
from controlplane.backends.ansible.processes import Stopper, kill_marked
from controlplane.backends.automation import RunEvent, RunResult, RunStatus
from controlplane.backends.health import HealthCheck
from controlplane.errors import PermanentError
from controlplane.settings import Settings

# The package's name, as before it was split into modules, so log lines and filters keep theirs.
logger = logging.getLogger(__package__)

BACKEND = "ansible"
PEXPECT_TIMEOUT = 0.25  # seconds between cancel/timeout checks
PLAYBOOK_SUFFIXES = (".yml", ".yaml")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class AnsibleAutomation:
    """Runs playbooks from `playbooks_dir` with ansible-runner, one private data dir per run."""

    def __init__(
        self,
        *,
        playbooks_dir: str | os.PathLike[str],
        runs_dir: str | os.PathLike[str],
        keep_artifacts: int = 20,
        timeout: int = 900,
        env: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        self.playbooks_dir = Path(playbooks_dir).resolve()
        self.runs_dir = Path(runs_dir)
        self.keep_artifacts = max(0, keep_artifacts)
        self.timeout = timeout
        self.extra_env = {k: v for k, v in (env or {}).items() if v}  # non-secret values only
        # PATH of the runs: this venv's bin first, where ansible-playbook is installed.
        self.path = path or os.pathsep.join((str(Path(sys.executable).parent), *SYSTEM_PATH))
        self._active: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> AnsibleAutomation:
        return cls(
            playbooks_dir=settings.playbooks_dir,
            runs_dir=Path(settings.instance_path) / "ansible-runs",
            keep_artifacts=settings.ansible_keep_artifacts,
            timeout=settings.ansible_timeout,
            # Names and paths only: clouds.yaml holds the credentials, not the environment.
            env={"OS_CLOUD": settings.os_cloud, "OS_CLIENT_CONFIG_FILE": settings.clouds_yaml},
        )

    # ---------------------------------------------------------------------------------- health
    def check(self) -> list[HealthCheck]:
        started = time.monotonic()
        core, runner = _dist_version("ansible-core"), _dist_version("ansible-runner")
        binary = shutil.which("ansible-playbook", path=self.path)
        ok = bool(core and runner and binary)
        tools = HealthCheck(
            name=BACKEND,
            ok=ok,
            detail=f"ansible-core {core or 'missing'}, ansible-runner {runner or 'missing'}, "
            f"ansible-playbook {binary or 'not found on ' + self.path}",
            version=core,
            hint="" if ok else "install ansible-core and ansible-runner into the control plane's venv",
            elapsed_ms=_ms_since(started),
        )
        found = self.playbooks_dir.is_dir()
        names = self.list_playbooks() if found else []
        playbooks = HealthCheck(
            name=f"{BACKEND}:playbooks",
            ok=found,
            detail=f"{len(names)} playbook(s) in {self.playbooks_dir}"
            if found
            else f"{self.playbooks_dir} is not a directory",
            hint="" if found else "set CONTROLPLANE_PLAYBOOKS_DIR to the project's playbooks/",
            elapsed_ms=_ms_since(started),
        )
        return [tools, playbooks]

    def list_playbooks(self) -> list[str]:
        """The playbooks at the top of the playbooks directory."""
        return sorted(
            p.name for p in self.playbooks_dir.iterdir() if p.is_file() and p.suffix in PLAYBOOK_SUFFIXES
        )

    # ------------------------------------------------------------------------------------ runs
    def run(
        self,
        playbook: str,
        *,
        extravars: Mapping[str, Any],
        inventory: Mapping[str, Any] | None = None,
        limit: str | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        timeout: int | None = None,
        ident: str | None = None,
    ) -> RunResult:
        playbook = self._resolve_playbook(playbook)
        ident = _checked_ident(ident) if ident is not None else _new_ident(playbook)
        try:
            extravars_json = json.dumps(dict(extravars))
            inventory_json = json.dumps(dict(inventory) if inventory else localhost_inventory())
        except (TypeError, ValueError) as exc:
            raise PermanentError(f"extravars/inventory are not JSON: {exc}", backend=BACKEND) from exc
        if not shutil.which("ansible-playbook", path=self.path):
            raise PermanentError(
                f"ansible-playbook not found on {self.path}",
                backend=BACKEND,
                hint="install ansible-core into the control plane's venv",
            )
        scrub = secret_scrubber(secret_extravar_values(extravars))
        cancel = threading.Event()
        with self._lock:
            if ident in self._active:
                raise PermanentError(f"a run named {ident} is already going on", backend=BACKEND)
            self._active[ident] = cancel
        marker = f"{ident}:{secrets.token_hex(8)}"
        private_dir = Path(tempfile.mkdtemp(prefix="controlplane-ansible-"))
        started = time.monotonic()
        deadline = started + (timeout or self.timeout)
        try:
            write_private(private_dir / "env" / "extravars", extravars_json)
            write_private(private_dir / "inventory" / "hosts.json", inventory_json)
            write_private(
                private_dir / "env" / "settings",
                json.dumps({"pexpect_timeout": PEXPECT_TIMEOUT, "suppress_ansible_output": True}),
            )
            collector = EventCollector(scrub, on_event)
            stopper = Stopper(cancel, deadline, marker)
            status, rc = self._start(
                private_dir,
                playbook,
                ident=ident,
                limit=limit,
                marker=marker,
                collector=collector,
                stopper=stopper,
            )
            leftovers = kill_marked(marker)
            if leftovers:
                logger.warning("run %s left %d process(es) behind; killed them", ident, leftovers)
            if status == "failed" and rc == 127 and not collector.events:
                raise PermanentError(
                    f"ansible-playbook could not be started: {scrub(collector.output_tail())}",
                    backend=BACKEND,
                )
            if stopper.timed_out:
                status = "timeout"
            duration = round(time.monotonic() - started, 3)
            kept = keep_artifacts(
                private_dir / "artifacts" / ident,
                runs_dir=self.runs_dir,
                ident=ident,
                keep=self.keep_artifacts,
                scrub=scrub,
            )
        finally:
            kill_marked(marker)
            with self._lock:
                self._active.pop(ident, None)
            shutil.rmtree(private_dir, ignore_errors=True)
        result = RunResult(
            ident=ident,
            playbook=playbook,
            status=status,
            rc=rc,
            stats=collector.stats,
            events=collector.events,
            duration=duration,
            summary=summary(status, collector, stopper, timeout or self.timeout),
            artifacts_dir=kept,
        )
        logger.info("run %s of %s: %s (rc %d) in %.1fs", ident, playbook, status, rc, duration)
        return result

    def cancel(self, ident: str) -> bool:
        with self._lock:
            event = self._active.get(ident)
        if event is None:
            return False
        event.set()
        return True

    def _start(
        self,
        private_dir: Path,
        playbook: str,
        *,
        ident: str,
        limit: str | None,
        marker: str,
        collector: EventCollector,
        stopper: Stopper,
    ) -> tuple[RunStatus, int]:
        try:
            config = RunnerConfig(
                private_data_dir=str(private_dir),
                project_dir=str(self.playbooks_dir),
                playbook=playbook,
                inventory=str(private_dir / "inventory" / "hosts.json"),
                limit=limit,
                ident=ident,
                quiet=True,
            )
            config.prepare()
            config.env = run_environment(
                config.env, private_dir, marker, path=self.path, extra_env=self.extra_env
            )
            runner = Runner(config, event_handler=collector, cancel_callback=stopper)
            status, rc = runner.run()
        except (AnsibleRunnerException, OSError) as exc:
            raise PermanentError(f"ansible-runner could not start: {exc}", backend=BACKEND) from exc
        if status not in ("successful", "failed", "timeout", "canceled"):
            raise PermanentError(f"ansible-runner ended with status {status}", backend=BACKEND)
        return status, int(rc if rc is not None else 254)

    def _resolve_playbook(self, playbook: str) -> str:
        """`playbook` relative to the playbooks dir, or PermanentError before anything runs."""
        candidate = Path(playbook)
        path = (self.playbooks_dir / candidate).resolve()
        if (
            candidate.is_absolute()
            or not path.is_relative_to(self.playbooks_dir)
            or path.suffix not in PLAYBOOK_SUFFIXES
            or not path.is_file()
        ):
            known = ", ".join(self.list_playbooks()) if self.playbooks_dir.is_dir() else "none"
            raise PermanentError(
                f"unknown playbook {playbook!r} (known: {known})", backend=BACKEND
            )
        return str(path.relative_to(self.playbooks_dir))


def _checked_ident(ident: str) -> str:
    if not _IDENT.match(ident):
        raise PermanentError(
            f"run ident {ident!r} must be 1-100 letters, digits, '.', '_' or '-'", backend=BACKEND
        )
    return ident


def _new_ident(playbook: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(playbook).stem)[:40]
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{stem}-{uuid.uuid4().hex[:8]}"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
