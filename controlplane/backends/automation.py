"""The automation port: run an Ansible playbook of the project and report what happened, task by task.

The real adapter is `controlplane.backends.ansible.AnsibleAutomation` (ansible-runner). A run that
fails is a result (`status="failed"`), not an exception; adapters raise `PermanentError` only when
the run cannot start (unknown playbook, ansible-playbook missing), `TemporaryError` when it may
start later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from controlplane.backends.health import HealthCheck

RunStatus = Literal["successful", "failed", "timeout", "canceled"]


@dataclass(frozen=True)
class RunEvent:
    """One Ansible event: a play or task starting, or a task's outcome on one host."""

    counter: int  # order within the run, from 1
    event: str  # e.g. "playbook_on_task_start", "runner_on_ok", "runner_on_failed"
    task: str = ""
    host: str = ""
    changed: bool = False
    failed: bool = False
    start: datetime | None = None
    end: datetime | None = None
    duration: float | None = None  # seconds
    message: str = ""  # short: the module's msg or stderr, secrets removed


@dataclass(frozen=True)
class HostStats:
    """The recap line of one host."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0


@dataclass(frozen=True)
class RunResult:
    """What one playbook run did."""

    ident: str
    playbook: str
    status: RunStatus
    rc: int
    stats: dict[str, HostStats]  # per host
    events: list[RunEvent]
    duration: float  # seconds
    summary: str = ""  # why it failed, in a line or a few (secrets removed)
    artifacts_dir: str = ""  # kept for display under <instance>/ansible-runs/, or ""

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    @property
    def failed_tasks(self) -> list[str]:
        """Names of the tasks that failed, in order (a task failing on two hosts appears twice)."""
        return [e.task for e in self.events if e.event == "runner_on_failed" and e.failed]


class AutomationBackend(Protocol):
    """Runs the project's playbooks (tenant baseline, shared-service deploys)."""

    def check(self) -> list[HealthCheck]:
        """ansible-core and ansible-runner versions, ansible-playbook found, playbooks present."""
        ...

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
        """Run `playbook` (a path relative to the playbooks directory) and wait for it.

        `inventory` is Ansible's YAML/JSON inventory structure; None means localhost only.
        `on_event` sees each event as it happens. `timeout` (seconds) ends the run with status
        "timeout" and kills every process it started.

        :raises PermanentError: unknown playbook, bad ident or extravars, ansible-playbook missing.
        """
        ...

    def cancel(self, ident: str) -> bool:
        """Ask the run `ident` to stop (status "canceled"); False when no such run is going on."""
        ...
