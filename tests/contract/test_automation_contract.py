"""Contract of the automation port (`controlplane.backends.automation.AutomationBackend`).

`AutomationBackendContract` is the reusable part: a test class for another implementation
inherits it and provides ``backend`` (over the test playbooks of tests/fixtures/ansible.py).
`TestAnsibleAutomation` runs it with real ansible-runner / ansible-core runs on localhost, plus
what is specific to ansible-runner: the environment and artifacts of a run.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from controlplane.backends.ansible import RUN_MARKER_ENV, AnsibleAutomation
from controlplane.backends.automation import AutomationBackend, HostStats, RunEvent, RunResult
from controlplane.errors import PermanentError
from tests.fixtures.ansible import process_alive, processes_running

pytestmark = [pytest.mark.integration, pytest.mark.contract]

TASK_OUTCOMES = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")


def outcomes(result: RunResult) -> list[tuple[str, str]]:
    """(task, event) of every per-host task outcome, in order."""
    return [(e.task, e.event) for e in result.events if e.event in TASK_OUTCOMES]


def wait_for_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout}s")


class AutomationBackendContract:
    """What every AutomationBackend must do. Subclasses provide ``backend``."""

    def test_check_reports_the_tools_and_the_playbooks(self, backend: AutomationBackend) -> None:
        checks = backend.check()

        assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
        assert checks[0].version[:1].isdigit()

    def test_successful_run_reports_each_task_live_and_in_order(
        self, backend: AutomationBackend, tmp_path: Path
    ) -> None:
        seen: list[RunEvent] = []
        touched = tmp_path / "touched"

        result = backend.run(
            "hello.yml",
            extravars={"tenant_id": "min-finance", "touch_path": str(touched)},
            on_event=seen.append,
        )

        assert (result.status, result.rc, result.ok) == ("successful", 0, True)
        assert outcomes(result) == [
            ("greet the tenant", "runner_on_ok"),
            ("touch a file", "runner_on_ok"),
            ("never runs", "runner_on_skipped"),
        ]
        assert seen == result.events  # every event went to on_event, as it happened
        counters = [e.counter for e in result.events]
        assert counters == sorted(counters) and len(set(counters)) == len(counters)
        greet = next(e for e in result.events if e.event == "runner_on_ok")
        assert greet.host == "localhost" and "hello min-finance" in greet.message
        assert not greet.changed and not greet.failed
        touch = [e for e in result.events if e.task == "touch a file" and e.event == "runner_on_ok"]
        assert touch[0].changed
        assert touch[0].start and touch[0].end and touch[0].start <= touch[0].end
        assert touch[0].duration is not None and touch[0].duration >= 0
        assert touched.exists()
        assert result.stats == {"localhost": HostStats(ok=2, changed=1, skipped=1)}
        assert result.failed_tasks == [] and result.summary == ""
        assert 0 < result.duration < 120

    def test_failing_task_gives_a_failed_result_naming_the_task(
        self, backend: AutomationBackend
    ) -> None:
        result = backend.run("fail.yml", extravars={})

        assert result.status == "failed" and not result.ok
        assert result.rc == 2
        assert result.failed_tasks == ["break on purpose"]
        assert outcomes(result) == [
            ("prepare", "runner_on_ok"),
            ("break on purpose", "runner_on_failed"),
        ]
        assert result.stats["localhost"].failed == 1
        assert "break on purpose" in result.summary

    def test_extravars_do_not_leak_into_the_next_run(self, backend: AutomationBackend) -> None:
        first = backend.run("vars.yml", extravars={"tenant_id": "tenant-a", "leak_probe": "A-only"})
        second = backend.run("vars.yml", extravars={"tenant_id": "tenant-b"})

        [a] = [e.message for e in first.events if e.event == "runner_on_ok"]
        [b] = [e.message for e in second.events if e.event == "runner_on_ok"]
        assert a == "tenant=tenant-a probe=A-only"
        assert b == "tenant=tenant-b probe=unset"

    def test_inventory_and_limit_choose_the_hosts(self, backend: AutomationBackend) -> None:
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        inventory = {"all": {"hosts": {"alpha": local, "beta": local}}}

        both = backend.run("vars.yml", extravars={"tenant_id": "x"}, inventory=inventory)
        only_beta = backend.run("vars.yml", extravars={"tenant_id": "x"}, inventory=inventory, limit="beta")

        assert set(both.stats) == {"alpha", "beta"}
        assert set(only_beta.stats) == {"beta"}
        assert [e.host for e in only_beta.events if e.event == "runner_on_ok"] == ["beta"]

    def test_timeout_kills_the_run_and_every_process_it_started(
        self, backend: AutomationBackend, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleep.pid"
        sleep_seconds = 3600 + secrets.randbelow(1000)  # a command line no one else runs
        started = time.monotonic()

        result = backend.run(
            "slow.yml",
            extravars={"pid_file": str(pid_file), "sleep_seconds": sleep_seconds},
            timeout=3,
        )

        assert result.status == "timeout" and not result.ok
        assert 3 <= time.monotonic() - started < 30
        assert "timed out" in result.summary
        sleeper = int(wait_for_file(pid_file, timeout=1))
        assert not process_alive(sleeper), f"the task's process {sleeper} survived the timeout"
        assert processes_running(f"sleep {sleep_seconds}") == []

    def test_cancel_stops_a_run_and_its_processes(
        self, backend: AutomationBackend, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleep.pid"
        sleep_seconds = 3600 + secrets.randbelow(1000)
        ident = f"cancel-{secrets.token_hex(4)}"
        results: list[RunResult] = []
        runner = threading.Thread(
            target=lambda: results.append(
                backend.run(
                    "slow.yml",
                    extravars={"pid_file": str(pid_file), "sleep_seconds": sleep_seconds},
                    ident=ident,
                )
            )
        )
        runner.start()
        sleeper = int(wait_for_file(pid_file))

        assert backend.cancel(ident) is True
        runner.join(timeout=30)

        assert not runner.is_alive()
        [result] = results
        assert result.status == "canceled" and result.ident == ident
        assert not process_alive(sleeper)
        assert processes_running(f"sleep {sleep_seconds}") == []
        assert backend.cancel(ident) is False  # finished: nothing left to cancel

    @pytest.mark.parametrize(
        "playbook",
        ["missing.yml", "../escape.yml", "/etc/passwd", "hello", "hello.yml/..", "outside.yml"],
    )
    def test_unknown_playbook_or_path_outside_is_refused_before_running(
        self, backend: AutomationBackend, playbooks_dir: Path, playbook: str
    ) -> None:
        outside = playbooks_dir.parent / "escape.yml"
        outside.write_text("- hosts: all\n  tasks: []\n")
        link = playbooks_dir / "outside.yml"
        if not link.exists():
            link.symlink_to(outside)
        try:
            with pytest.raises(PermanentError, match="unknown playbook"):
                backend.run(playbook, extravars={})
        finally:
            link.unlink()


class TestAnsibleAutomation(AutomationBackendContract):
    """The contract on `AnsibleAutomation`, plus the secret hygiene of its runs."""

    @pytest.fixture
    def backend(self, automation: AnsibleAutomation) -> AutomationBackend:
        return automation

    def test_parent_secrets_reach_neither_the_run_nor_its_artifacts(
        self, automation: AnsibleAutomation, ansible_runs_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        canary = f"s.leak-canary-{secrets.token_hex(6)}"
        password = f"db-pass-{secrets.token_hex(6)}"
        monkeypatch.setenv("VAULT_TOKEN", canary)
        monkeypatch.setenv("CONTROLPLANE_VAULT_SECRET_ID", canary)
        monkeypatch.setenv("OS_PASSWORD", canary)
        temp_dirs_before = set(Path(tempfile.gettempdir()).glob("controlplane-ansible-*"))

        result = automation.run("env.yml", extravars={"db_password": password})

        assert result.ok, result.summary
        # The playbook itself could not see them.
        [lookup, names, run_path, connect] = [
            e.message for e in result.events if e.event == "runner_on_ok"
        ]
        assert lookup == "VAULT_TOKEN=absent"
        assert {"HOME", "PATH", RUN_MARKER_ENV} <= set(names.split())
        assert not {"VAULT_TOKEN", "OS_PASSWORD", "CONTROLPLANE_VAULT_SECRET_ID"} & set(names.split())
        assert run_path.startswith(f"{Path(sys.executable).parent}{os.pathsep}")
        assert connect == "connecting with ***"
        # Nothing kept on disk holds the parent's secret or the secret extravar.
        kept = Path(result.artifacts_dir)
        assert kept.parent == ansible_runs_dir
        files = [p for p in kept.rglob("*") if p.is_file()]
        assert any(p.name == "command" for p in files) and len(files) > 3
        for path in files:
            text = path.read_text(errors="replace")
            assert canary not in text, path
            assert password not in text, path
        command = json.loads((kept / "command").read_text())
        assert "VAULT_TOKEN" not in command["env"] and "OS_PASSWORD" not in command["env"]
        assert command["env"]["PATH"].startswith(str(Path(sys.executable).parent))
        assert RUN_MARKER_ENV in command["env"]
        assert not any(password in arg for arg in command["command"])  # -e @file, not inline
        # The private data dir (extravars file and all) is gone.
        assert set(Path(tempfile.gettempdir()).glob("controlplane-ansible-*")) == temp_dirs_before

    def test_keeps_only_the_newest_artifacts(self, playbooks_dir: Path, tmp_path: Path) -> None:
        automation = AnsibleAutomation(
            playbooks_dir=playbooks_dir, runs_dir=tmp_path / "runs", keep_artifacts=2
        )

        idents = [automation.run("vars.yml", extravars={"tenant_id": str(i)}).ident for i in range(3)]

        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(idents[1:])

    def test_missing_ansible_playbook_is_a_permanent_error(
        self, playbooks_dir: Path, tmp_path: Path
    ) -> None:
        automation = AnsibleAutomation(
            playbooks_dir=playbooks_dir, runs_dir=tmp_path / "runs", path=str(tmp_path)
        )

        tools, playbooks = automation.check()
        assert not tools.ok and tools.hint and playbooks.ok
        with pytest.raises(PermanentError, match="ansible-playbook not found"):
            automation.run("hello.yml", extravars={})

    def test_a_playbook_that_does_not_parse_fails_with_the_reason(self, tmp_path: Path) -> None:
        playbooks = tmp_path / "playbooks"
        playbooks.mkdir()
        (playbooks / "broken.yml").write_text("- hosts: all\n  tasks:\n    - name: x\n   bad: [\n")
        automation = AnsibleAutomation(playbooks_dir=playbooks, runs_dir=tmp_path / "runs")

        result = automation.run("broken.yml", extravars={})

        assert result.status == "failed" and result.rc != 0
        assert result.events == [] and result.failed_tasks == []
        assert "broken.yml" in result.summary and "\n" in result.summary

    def test_bad_ident_or_extravars_are_refused(self, automation: AnsibleAutomation) -> None:
        with pytest.raises(PermanentError, match="ident"):
            automation.run("vars.yml", extravars={"tenant_id": "x"}, ident="../../etc")
        with pytest.raises(PermanentError, match="JSON"):
            automation.run("vars.yml", extravars={"tenant_id": object()})
