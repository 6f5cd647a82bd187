"""One lazily opened openstacksdk Connection per adapter, configured like the `openstack` CLI.

The cloud is a name in clouds.yaml (OS_CLOUD); the file is found the way the CLI finds it
(OS_CLIENT_CONFIG_FILE, then ./clouds.yaml, ~/.config/openstack, /etc/openstack), and an
explicit `clouds_yaml` path is searched first. Nothing is read or sent before the first call.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openstack import connection as sdk_connection
from openstack.config import loader

from controlplane import __version__
from controlplane.backends.cloud import UserCredentials
from controlplane.backends.openstack.errors import BACKEND, translated
from controlplane.errors import PermanentError

log = logging.getLogger(__name__)

HINT_CLOUDS_YAML = (
    "run scripts/devcloud up (it writes .devcloud/clouds.yaml), or point "
    "OS_CLIENT_CONFIG_FILE / CONTROLPLANE_CLOUDS_YAML at your clouds.yaml"
)
# Options of the named cloud that an adapter acting as another user keeps.
_KEPT_OPTIONS = ("region_name", "interface", "verify", "cacert", "cert", "key",
                 "identity_api_version")


@dataclass(frozen=True)
class CloudTarget:
    """Which cloud to talk to, how long to wait, and (optionally) as whom."""

    cloud: str
    clouds_yaml: str = ""
    timeout: float = 30.0
    connect_retries: int = 1
    credentials: UserCredentials | None = None

    def describe(self) -> str:
        who = f" as user {self.credentials.user_id}" if self.credentials else ""
        return f"cloud {self.cloud!r}{who}"


def _load_config(target: CloudTarget) -> loader.OpenStackConfig:
    files: list[str] | None = None
    if target.clouds_yaml:
        path = Path(target.clouds_yaml)
        if not path.is_file():
            raise PermanentError(
                f"clouds.yaml {path} does not exist", backend=BACKEND, hint=HINT_CLOUDS_YAML
            )
        files = [str(path), *loader.CONFIG_FILES]
    with translated(f"read clouds.yaml for {target.describe()}"):
        # An explicit clouds.yaml is authoritative: OS_CLIENT_CONFIG_FILE and OS_* variables of
        # whoever started the process must not silently point us at another cloud.
        config = loader.OpenStackConfig(
            config_files=files, app_name="controlplane", app_version=__version__,
            load_envvars=not target.clouds_yaml,
        )
    names = config.get_cloud_names()
    if target.cloud not in names:
        where = config.config_filename or "no clouds.yaml found"
        known = ", ".join(sorted(n for n in names if n != "envvars")) or "none"
        raise PermanentError(
            f"cloud {target.cloud!r} is not defined ({where}; clouds defined: {known})",
            backend=BACKEND,
            hint=f"set os_cloud (OS_CLOUD) to a cloud defined in clouds.yaml, or {HINT_CLOUDS_YAML}",
        )
    return config


def open_connection(target: CloudTarget) -> sdk_connection.Connection:
    """Build the Connection (no network I/O yet: keystoneauth authenticates on first request)."""
    config = _load_config(target)
    common: dict[str, Any] = {
        "api_timeout": target.timeout,
        "connect_retries": target.connect_retries,
    }
    with translated(f"configure {target.describe()}"):
        if target.credentials is None:
            region = config.get_one(cloud=target.cloud, **common)
        else:
            base = config.get_one(cloud=target.cloud, validate=False)
            kept = {k: base.config[k] for k in _KEPT_OPTIONS if base.config.get(k) is not None}
            creds = target.credentials
            auth = {
                "auth_url": base.config["auth"]["auth_url"],
                "user_id": creds.user_id,
                "password": creds.password,
                "project_id": creds.project_id,
            }
            fresh = loader.OpenStackConfig(
                load_yaml_config=False, load_envvars=False,
                app_name="controlplane", app_version=__version__,
            )
            region = fresh.get_one(auth_type="password", auth=auth, **kept, **common)
        conn = sdk_connection.Connection(config=region)
    log.debug("openstack connection configured for %s", target.describe())
    return conn


class ConnectionHolder:
    """Base of the adapter's area mixins: owns the target and the lazily opened connection."""

    def __init__(self, *, target: CloudTarget, health_timeout: float = 3.0) -> None:
        self._target = target
        self._health_timeout = min(health_timeout, target.timeout)
        self._lock = threading.Lock()
        self._connection: sdk_connection.Connection | None = None
        self._health_connection: sdk_connection.Connection | None = None
        # Role name -> id: roles are global and fixed, one lookup per adapter is enough.
        self._role_ids: dict[str, str] = {}

    @property
    def target(self) -> CloudTarget:
        return self._target

    def _conn(self) -> sdk_connection.Connection:
        """The shared connection; opened on first use and reused for every later call."""
        conn = self._connection
        if conn is None:
            with self._lock:
                if self._connection is None:
                    self._connection = open_connection(self._target)
                conn = self._connection
        return conn

    def _health_conn(self) -> sdk_connection.Connection:
        """A second connection with short timeouts and no retries, so check() stays fast."""
        conn = self._health_connection
        if conn is None:
            with self._lock:
                if self._health_connection is None:
                    quick = CloudTarget(
                        cloud=self._target.cloud,
                        clouds_yaml=self._target.clouds_yaml,
                        timeout=self._health_timeout,
                        connect_retries=0,
                        credentials=self._target.credentials,
                    )
                    self._health_connection = open_connection(quick)
                conn = self._health_connection
        return conn

    def close(self) -> None:
        """Drop the connections (their HTTP pools); the next call opens a new one."""
        with self._lock:
            for conn in (self._connection, self._health_connection):
                if conn is not None:
                    conn.close()
            self._connection = None
            self._health_connection = None
