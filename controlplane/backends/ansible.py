"""AnsibleAutomation: the AutomationBackend over ansible-runner. The only module that imports it.

What each run gets, and why (measured with ansible-runner 2.4.3, see recipes/vault-ansible.md):
- a fresh private data dir, removed afterwards: the runner keeps `env/extravars` in it and passes it
  to every later run in the same dir, so one tenant's variables would reach the next tenant's run;
- an explicit, minimal environment instead of the control plane's own (the runner copies
  `os.environ` and records it in `artifacts/<ident>/command`, VAULT_TOKEN and all): the venv's bin
  first on PATH (ansible-playbook must be found there), HOME, a UTF-8 locale, ANSIBLE_* settings
  (collections from the venv's share/ansible/collections, where scripts/install puts them),
  the run marker, and the few non-secret values the adapter was built with (e.g. OS_CLOUD);
- extravars and the inventory as files (0600) in that dir, never on the command line, where `ps`
  and the `command` artifact would show them;
- `ansible_python_interpreter` = this interpreter for the default localhost inventory;
- its own cancel callback (else the runner installs SIGTERM/SIGINT handlers in our process), polled
  every PEXPECT_TIMEOUT seconds, which enforces the timeout and `cancel()`;
- on timeout or cancel, every process of the run is killed. ansible's workers call setsid(), so the
  runner's killpg() misses them and their children; each run's environment carries a unique marker
  (RUN_MARKER_ENV) that we look for in /proc/*/environ. The same sweep runs after every run.
- at most `keep_artifacts` runs' artifacts are kept in `<runs_dir>/<ident>/` for display, with the
  values of secret-looking extravars (password, token, secret...) replaced by "***".
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ansible_runner import AnsibleRunnerException, Runner, RunnerConfig
from ansible_runner.utils import get_callback_dir

from controlplane.backends.automation import HostStats, RunEvent, RunResult, RunStatus
from controlplane.backends.health import HealthCheck
from controlplane.errors import PermanentError
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

BACKEND = "ansible"
RUN_MARKER_ENV = "CONTROLPLANE_ANSIBLE_RUN"
PEXPECT_TIMEOUT = 0.25  # seconds between cancel/timeout checks
PLAYBOOK_SUFFIXES = (".yml", ".yaml")
MESSAGE_CHARS = 300
REDACTED = "***"
# Extravars whose names look like these hold secrets: their values never reach kept artifacts.
SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|credential|private_key|api_?key", re.I)
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# What the runner itself puts in the environment; everything else it copied from ours is dropped.
_RUNNER_ENV = (
    "ANSIBLE_STDOUT_CALLBACK",
    "ANSIBLE_RETRY_FILES_ENABLED",
    "ANSIBLE_CACHE_PLUGIN",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION",
    "AWX_ISOLATED_DATA_DIR",
    "RUNNER_OMIT_EVENTS",
    "RUNNER_ONLY_FAILED_EVENTS",
)
_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# scripts/install puts the collections the playbooks use (openstack.cloud) in the venv, here;
# then Ansible's defaults.
_COLLECTIONS_PATH = os.pathsep.join(
    (str(Path(sys.prefix) / "share" / "ansible" / "collections"),
     "~/.ansible/collections", "/usr/share/ansible/collections")
)


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
        self.path = path or os.pathsep.join((str(Path(sys.executable).parent), *_SYSTEM_PATH))
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
            inventory_json = json.dumps(dict(inventory) if inventory else _localhost_inventory())
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
            _write_private(private_dir / "env" / "extravars", extravars_json)
            _write_private(private_dir / "inventory" / "hosts.json", inventory_json)
            _write_private(
                private_dir / "env" / "settings",
                json.dumps({"pexpect_timeout": PEXPECT_TIMEOUT, "suppress_ansible_output": True}),
            )
            collector = _EventCollector(scrub, on_event)
            stopper = _Stopper(cancel, deadline, marker)
            status, rc = self._start(
                private_dir,
                playbook,
                ident=ident,
                limit=limit,
                marker=marker,
                collector=collector,
                stopper=stopper,
            )
            leftovers = _kill_marked(marker)
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
            kept = self._keep(private_dir / "artifacts" / ident, ident, scrub)
        finally:
            _kill_marked(marker)
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
            summary=_summary(status, collector, stopper, timeout or self.timeout),
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
        collector: _EventCollector,
        stopper: _Stopper,
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
            config.env = self._environment(config.env, private_dir, marker)
            runner = Runner(config, event_handler=collector, cancel_callback=stopper)
            status, rc = runner.run()
        except (AnsibleRunnerException, OSError) as exc:
            raise PermanentError(f"ansible-runner could not start: {exc}", backend=BACKEND) from exc
        if status not in ("successful", "failed", "timeout", "canceled"):
            raise PermanentError(f"ansible-runner ended with status {status}", backend=BACKEND)
        return status, int(rc if rc is not None else 254)

    def _environment(self, prepared: Mapping[str, str], private_dir: Path, marker: str) -> dict[str, str]:
        """The run's whole environment: the runner's own settings, ours, and nothing inherited."""
        tmp = private_dir / "tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        env = {key: prepared[key] for key in _RUNNER_ENV if key in prepared}
        env.update(
            {
                "PATH": self.path,
                "HOME": os.environ.get("HOME") or str(Path.home()),
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                "TMPDIR": str(tmp),
                "ANSIBLE_LOCAL_TEMP": str(tmp),
                "ANSIBLE_CALLBACK_PLUGINS": get_callback_dir(),
                "ANSIBLE_COLLECTIONS_PATH": _COLLECTIONS_PATH,
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_HOST_KEY_CHECKING": "True",  # the runner would turn it off
                "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "False",
                RUN_MARKER_ENV: marker,
                **self.extra_env,
            }
        )
        return env

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

    def _keep(self, artifacts: Path, ident: str, scrub: Callable[[str], str]) -> str:
        """Move the run's artifacts to runs_dir (secrets removed); keep the newest keep_artifacts.

        Artifacts are for display: failing to keep them is logged, never the run's failure.
        """
        if not self.keep_artifacts or not artifacts.is_dir():
            return ""
        try:
            return self._move_artifacts(artifacts, ident, scrub)
        except OSError:
            logger.warning("could not keep the artifacts of run %s", ident, exc_info=True)
            return ""

    def _move_artifacts(self, artifacts: Path, ident: str, scrub: Callable[[str], str]) -> str:
        self.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.runs_dir / ident
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(artifacts), str(target))
        for path in target.rglob("*"):
            if path.is_file() and not path.is_symlink():
                text = path.read_text(encoding="utf-8", errors="replace")
                cleaned = scrub(text)
                if cleaned != text:
                    path.write_text(cleaned, encoding="utf-8")
        os.utime(target)
        runs = sorted(
            (p for p in self.runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        for old in runs[: max(0, len(runs) - self.keep_artifacts)]:
            shutil.rmtree(old, ignore_errors=True)
        return str(target)


class _EventCollector:
    """The runner's event handler: turns events into RunEvents, live, and keeps the recap."""

    def __init__(self, scrub: Callable[[str], str], on_event: Callable[[RunEvent], None] | None):
        self.scrub = scrub
        self.on_event = on_event
        self.events: list[RunEvent] = []
        self.stats: dict[str, HostStats] = {}
        self.output: list[str] = []

    def __call__(self, data: dict[str, Any]) -> bool:
        kind = str(data.get("event", ""))
        if kind == "verbose":  # output outside any task, e.g. a syntax error
            self.output.append(str(data.get("stdout", "")))
            return True
        details = data.get("event_data") or {}
        if kind == "playbook_on_stats":
            self.stats = _host_stats(details)
        event = RunEvent(
            counter=int(data.get("counter", 0)),
            event=kind,
            task=str(details.get("task") or ""),
            host=str(details.get("host") or ""),
            changed=bool((details.get("res") or {}).get("changed", False)),
            failed=kind in ("runner_on_failed", "runner_on_unreachable")
            and not details.get("ignore_errors"),
            start=_timestamp(details.get("start")),
            end=_timestamp(details.get("end")),
            duration=float(details["duration"]) if details.get("duration") is not None else None,
            message=self.scrub(_short_message(details.get("res"))),
        )
        self.events.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("on_event callback failed on event %d", event.counter)
        return True  # the runner writes the event to the artifacts only when we say so

    def output_tail(self, lines: int = 10) -> str:
        text = "\n".join(self.output).strip().splitlines()
        return "\n".join(line for line in text[-lines:] if line.strip())


class _Stopper:
    """The runner's cancel callback: stop on cancel() or at the deadline, killing the run first."""

    def __init__(self, cancel: threading.Event, deadline: float, marker: str) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self.marker = marker
        self.timed_out = False
        self.killed = 0

    def __call__(self) -> bool:
        if not self.cancel.is_set() and time.monotonic() < self.deadline:
            return False
        self.timed_out = not self.cancel.is_set()
        self.killed += _kill_marked(self.marker)
        return True


# ----------------------------------------------------------------------------- process sweeping
def _marked_processes(marker: str) -> list[int]:
    """PIDs whose environment carries RUN_MARKER_ENV=marker (our own user's processes only)."""
    needle = f"{RUN_MARKER_ENV}={marker}".encode()
    own = os.getpid()
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:  # gone meanwhile, or another user's
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def _kill_marked(marker: str, *, rounds: int = 5) -> int:
    """SIGKILL every process of the run, again until none is left (a dying parent may fork)."""
    killed = 0
    for _ in range(rounds):
        pids = _marked_processes(marker)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.05)
    return killed


# ------------------------------------------------------------------------------- pure helpers
def _localhost_inventory() -> dict[str, Any]:
    return {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            }
        }
    }


def secret_extravar_values(extravars: Mapping[str, Any]) -> set[str]:
    """String values of extravars (at any depth) whose key looks like a secret's."""
    found: set[str] = set()

    def visit(value: Any, secret: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, secret or bool(SECRET_NAME.search(str(key))))
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item, secret)
        elif secret and isinstance(value, str | int) and len(str(value)) >= 4:
            found.add(str(value))

    visit(extravars, False)
    return found


def secret_scrubber(values: Iterable[str]) -> Callable[[str], str]:
    """A function replacing each value, raw or JSON-escaped, by '***'."""
    forms = {form for v in values for form in (v, json.dumps(v)[1:-1]) if form}
    ordered = sorted(forms, key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in ordered:
            text = text.replace(form, REDACTED)
        return text

    return scrub


def _host_stats(details: Mapping[str, Any]) -> dict[str, HostStats]:
    fields = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failed",
        "skipped": "skipped",
        "dark": "unreachable",
    }
    hosts: dict[str, dict[str, int]] = {}
    for source, target in fields.items():
        for host, count in (details.get(source) or {}).items():
            hosts.setdefault(str(host), {})[target] = int(count)
    return {host: HostStats(**counts) for host, counts in sorted(hosts.items())}


def _short_message(res: Any) -> str:
    if not isinstance(res, Mapping):
        return ""
    for key in ("msg", "stderr", "stdout"):
        value = res.get(key)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            text = " ".join(text.split())
            return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"
    return ""


def _summary(status: str, collector: _EventCollector, stopper: _Stopper, timeout: int) -> str:
    if status == "timeout":
        return f"timed out after {timeout}s; {stopper.killed} process(es) killed"
    if status == "canceled":
        return f"canceled; {stopper.killed} process(es) killed"
    if status == "successful":
        return ""
    failed = [e for e in collector.events if e.failed]
    if failed:
        return "\n".join(f"{e.task} on {e.host}: {e.message}" for e in failed)
    return collector.scrub(collector.output_tail())


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _checked_ident(ident: str) -> str:
    if not _IDENT.match(ident):
        raise PermanentError(
            f"run ident {ident!r} must be 1-100 letters, digits, '.', '_' or '-'", backend=BACKEND
        )
    return ident


def _new_ident(playbook: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(playbook).stem)[:40]
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{stem}-{uuid.uuid4().hex[:8]}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
