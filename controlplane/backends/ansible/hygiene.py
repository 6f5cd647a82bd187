"""What a run is given: a minimal environment, private 0600 files, and secrets scrubbed from output."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ansible_runner.utils import get_callback_dir

from controlplane.backends.ansible.processes import RUN_MARKER_ENV

REDACTED = "***"
# Extravars whose names look like these hold secrets: their values never reach kept artifacts.
SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|credential|private_key|api_?key", re.I)
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
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# scripts/install puts the collections the playbooks use (openstack.cloud) in the venv, here;
# then Ansible's defaults.
_COLLECTIONS_PATH = os.pathsep.join(
    (str(Path(sys.prefix) / "share" / "ansible" / "collections"),
     "~/.ansible/collections", "/usr/share/ansible/collections")
)


def run_environment(
    prepared: Mapping[str, str],
    private_dir: Path,
    marker: str,
    *,
    path: str,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    """The run's whole environment: the runner's own settings, ours, and nothing inherited."""
    tmp = private_dir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    env = {key: prepared[key] for key in _RUNNER_ENV if key in prepared}
    env.update(
        {
            "PATH": path,
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
            **extra_env,
        }
    )
    return env


def localhost_inventory() -> dict[str, Any]:
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


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


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
