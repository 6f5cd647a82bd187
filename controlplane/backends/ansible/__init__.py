"""AnsibleAutomation: the AutomationBackend over ansible-runner. The only package that imports it.

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

Modules: adapter (the class), hygiene (environment, private files, secret scrubbing), events
(runner events to RunEvents), processes (the marker sweep), artifacts (what is kept for display).
"""

from __future__ import annotations

from controlplane.backends.ansible.adapter import (
    BACKEND,
    PEXPECT_TIMEOUT,
    PLAYBOOK_SUFFIXES,
    AnsibleAutomation,
)
from controlplane.backends.ansible.events import MESSAGE_CHARS
from controlplane.backends.ansible.hygiene import (
    REDACTED,
    SECRET_NAME,
    secret_extravar_values,
    secret_scrubber,
)
from controlplane.backends.ansible.processes import RUN_MARKER_ENV

__all__ = [
    "BACKEND",
    "MESSAGE_CHARS",
    "PEXPECT_TIMEOUT",
    "PLAYBOOK_SUFFIXES",
    "REDACTED",
    "RUN_MARKER_ENV",
    "SECRET_NAME",
    "AnsibleAutomation",
    "secret_extravar_values",
    "secret_scrubber",
]
