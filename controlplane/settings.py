"""Typed settings: defaults, then an instance TOML file, then CONTROLPLANE_* environment."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from controlplane.errors import InvalidSettings

ENV_PREFIX = "CONTROLPLANE_"
# CONTROLPLANE_* variables that steer tools rather than the service; not settings.
NON_SETTING_ENV = frozenset(
    {"CONFIG", "DEBUG", "TEST_DATABASE_URL", "FAULT_KILL_AFTER_ACTION", "ANSIBLE_RUN"}
)
REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_PROXY_HOPS = 5
SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
ROLES = ("full", "console", "worker", "verification")
SECURE_COOKIE_CHOICES = ("auto", "true", "false")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_BOOL_WORDS = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}

# Fields whose values must never be printed; `Settings.redacted()` masks them.
SECRET_FIELDS = frozenset({
    "secret_key", "vault_token", "vault_secret_id", "vault_publisher_token", "metrics_token",
    "verification_counts_database_url",
})


def _default_instance_path() -> str:
    return str(REPO_ROOT / "instance")


@dataclass(frozen=True)
class Settings:
    """Everything the control plane reads from its environment, with the defaults a laptop needs."""

    instance_path: str = field(default_factory=_default_instance_path)
    # Empty means: a SQLite file in the instance folder.
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    # OpenStack: as the `openstack` CLI, a cloud name in clouds.yaml (OS_CLOUD / OS_CLIENT_CONFIG_FILE).
    os_cloud: str = "devcloud"
    clouds_yaml: str = ""
    os_timeout: float = 30.0
    # Vault / OpenBao: token, or AppRole (role_id + secret_id).
    vault_addr: str = "http://127.0.0.1:8200"
    vault_token: str = ""
    vault_role_id: str = ""
    vault_secret_id: str = ""
    vault_transit_mount: str = "transit"
    vault_kv_mount: str = "kv"
    vault_timeout: float = 10.0
    # The worker's second token (policy controlplane-publisher): signs trust lists and audit
    # checkpoints with the trust-root and audit keys, nothing else. Empty: the worker's own token
    # (role `full`, tests and single-process development).
    vault_publisher_token: str = ""
    # Ansible
    playbooks_dir: str = str(REPO_ROOT / "playbooks")
    ansible_timeout: int = 900
    ansible_keep_artifacts: int = 20
    tenants_dir: str = str(REPO_ROOT / "tenants")
    # Console sessions
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # auto = Secure cookies with the __Host- prefix, and HSTS, unless `host` is loopback (a laptop
    # over plain HTTP); true or false to say so explicitly (true behind a TLS proxy on loopback).
    secure_cookies: str = "auto"
    # The key that encrypts TOTP secrets at rest (accounts.mfa): its own file, never derived from
    # SECRET_KEY, so SECRET_KEY plus a database copy does not give the secrets. Empty means
    # instance/mfa.key, created 0600 on first start.
    mfa_key_file: str = ""
    # Reverse proxies in front of this process that append to X-Forwarded-For/-Proto/-Host. The
    # client address (rate limits, login lockout, audit) is taken that many hops back; 0 trusts no
    # such header, so a client cannot pick its own address by sending one.
    proxy_hops: int = 0
    # Ministry request rules (requests.rules.RequestRules): a quota growing beyond `factor` x its limit
    # needs `approvals` operators; auto-approval of decreases, and of one step (`fraction` of the limit)
    # up when usage is above `threshold` of it.
    request_large_change_factor: float = 2.0
    request_large_change_approvals: int = 2
    request_auto_approve_decreases: bool = True
    request_auto_approve_steps: bool = True
    request_step_fraction: float = 0.25
    request_step_usage_threshold: float = 0.80
    # Bearer token for /metrics scrapers that are not on loopback; empty = loopback only.
    metrics_token: str = ""
    # What this process is (issue 12: each role its own process and credentials):
    # "console"      console and APIs (gunicorn): no cloud credential, a Vault token that can only
    #                obtain one organisation's signing identity; cloud state comes from the database;
    # "worker"       the reconciler, trust-list publisher and audit sequencer: the cloud-admin
    #                credential, the worker's and the publisher's Vault tokens;
    # "verification" the public verification page and API, the trust list and probes (the
    #                shared-verification tenant): a read-only database credential, nothing else;
    # "full"         all of it in one process: tests and single-process development only.
    role: str = "full"
    # Where the reconciler deploys the shared verification service (playbooks/shared-verification.yml).
    verification_port: int = 8090
    # The verification service's own directory (settings, release, logs), outside instance_path so
    # it never sits beside the control plane's secrets. Empty: <instance_path>/../verification-home.
    verification_home: str = ""
    # Its PostgreSQL role (SELECT on what it reads, INSERT/UPDATE on the counts only); empty:
    # "<database>_verify". Created by the worker (controlplane db grant-verifier).
    verification_db_user: str = ""
    # Its OS user when the worker runs as root on PostgreSQL (created by the playbook); it cannot
    # read instance_path. Empty: the worker's own user.
    verification_os_user: str = "cp-verify"
    # The verification role only: where its counts go when its database connection is read-only
    # (SQLite); empty = its database_url.
    verification_counts_database_url: str = ""
    # Base of the verification URLs printed in QR codes (uppercased there: QR alphanumeric mode).
    verify_base_url: str = "http://127.0.0.1:8080"
    # Public verification (page and JSON) per client IP: a token bucket; 0 per minute = no limit.
    verify_rate_per_minute: int = 120
    verify_rate_burst: int = 30
    # The optional file check on the verification page: hashed while it streams in, never stored.
    verify_upload_max_bytes: int = 20 * 1024 * 1024
    # Verification counts are summed in each process and written at most this often.
    verify_counts_flush_seconds: float = 5.0
    # Audit log: the origin line of its C2SP checkpoints (and the audit key's note name); how often
    # the worker sequences and signs, apart from the reconcile interval (an event can be deleted
    # without trace only while it waits); `audit check` flags events waiting longer than the window.
    audit_origin: str = "controlplane.local/audit"
    audit_sequence_seconds: float = 5.0
    audit_pending_window_seconds: int = 60
    # The independent witness (C2SP tlog-witness) that co-signs every checkpoint, and its verifier
    # key(s) pinned here (`<name>+<key id>+<base64>`, as its /vkey shows); empty URL = no witness.
    witness_url: str = ""
    witness_vkey: str = ""
    witness_timeout: float = 10.0

    # ------------------------------------------------------------------ derived
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.instance_path) / 'controlplane.db'}"

    @property
    def cookies_secure(self) -> bool:
        """Whether cookies are Secure with the __Host- prefix and HSTS is sent (see secure_cookies)."""
        word = str(self.secure_cookies).strip().lower()  # an override may pass a bool
        choice = _BOOL_WORDS.get(word, word)
        if choice == "auto":
            return self.host.strip("[]").lower() not in LOOPBACK_HOSTS
        return choice == "true"

    @property
    def effective_mfa_key_file(self) -> Path:
        return Path(self.mfa_key_file) if self.mfa_key_file else Path(self.instance_path) / "mfa.key"

    @property
    def effective_verification_home(self) -> Path:
        if self.verification_home:
            return Path(self.verification_home).resolve()
        return Path(self.instance_path).resolve().parent / "verification-home"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked and database passwords removed."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            out[f.name] = value
        out["database_url"] = redact_url(self.effective_database_url)
        return out

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def redact_url(url: str) -> str:
    """Hide the password in a URL so it can be logged."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


# --------------------------------------------------------------------------- loading
def _coerce(name: str, raw: object, target: type | str, problems: list[str], source: str) -> object:
    kind = target if isinstance(target, str) else target.__name__
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        problems.append(f"{name} ({source}): expected true/false, got {raw!r}")
        return None
    if kind == "int":
        try:
            return int(str(raw).strip())
        except ValueError:
            problems.append(f"{name} ({source}): expected a whole number, got {raw!r}")
            return None
    if kind == "float":
        try:
            return float(str(raw).strip())
        except ValueError:
            problems.append(f"{name} ({source}): expected a number, got {raw!r}")
            return None
    return str(raw)


def load_settings(
    overrides: Mapping[str, object] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Build Settings from defaults → instance file → environment → overrides, or raise InvalidSettings.

    Also honours the variables OpenStack and Vault users already set (OS_CLOUD,
    OS_CLIENT_CONFIG_FILE, VAULT_ADDR, VAULT_TOKEN) when no CONTROLPLANE_* value is given.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, object] = {}

    # Upstream conventions first, so that explicit CONTROLPLANE_* values win.
    for upstream, name in (
        ("OS_CLOUD", "os_cloud"),
        ("OS_CLIENT_CONFIG_FILE", "clouds_yaml"),
        ("VAULT_ADDR", "vault_addr"),
        ("VAULT_TOKEN", "vault_token"),
    ):
        if env.get(upstream):
            values[name] = env[upstream]

    instance_path = str(
        (overrides or {}).get("instance_path")
        or env.get(ENV_PREFIX + "INSTANCE_PATH")
        or _default_instance_path()
    )
    path = config_file or env.get(ENV_PREFIX + "CONFIG") or Path(instance_path) / "controlplane.toml"
    path = Path(path)
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            problems.append(f"config file {path}: {exc}")
            data = {}
        for key, raw in data.items():
            if key not in known:
                problems.append(f"config file {path}: unknown setting {key!r}")
                continue
            values[key] = _coerce(key, raw, known[key].type, problems, str(path))
    elif config_file or env.get(ENV_PREFIX + "CONFIG"):
        problems.append(f"config file {path} does not exist")

    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key[len(ENV_PREFIX) :] in NON_SETTING_ENV:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in known:
            # Typos in deployment manifests otherwise go unnoticed for months.
            problems.append(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
            continue
        values[name] = _coerce(name, raw, known[name].type, problems, key)

    for key, raw in (overrides or {}).items():
        if key not in known:
            problems.append(f"override {key!r}: unknown setting")
            continue
        values[key] = raw

    values = {k: v for k, v in values.items() if v is not None}
    settings = Settings(**values)  # type: ignore[arg-type]
    problems.extend(validate_settings(settings))
    if problems:
        raise InvalidSettings(problems)
    return settings


def _choice_problems(settings: Settings) -> list[str]:
    """Settings that take one of a few words."""
    problems = []
    secure = str(settings.secure_cookies).strip().lower()
    if _BOOL_WORDS.get(secure, secure) not in SECURE_COOKIE_CHOICES:
        problems.append(f"secure_cookies: {settings.secure_cookies!r} is not one of auto, true, false")
    return problems


def validate_settings(settings: Settings) -> list[str]:
    """Every problem with these settings, as sentences naming the setting and the fix."""
    problems: list[str] = []
    url = settings.effective_database_url
    scheme = url.split(":", 1)[0] if ":" in url else ""
    if scheme not in SUPPORTED_DB_SCHEMES:
        problems.append(
            f"database_url: {redact_url(url)!r} is not a database URL; expected e.g. "
            "sqlite:////var/lib/controlplane/cp.db or postgresql+psycopg://user@host/dbname"
        )
    elif scheme.startswith("postgresql"):
        parts = urlsplit(url)
        if not parts.hostname and "host=" not in parts.query:
            problems.append(f"database_url: {redact_url(url)!r} names no host")
        if not parts.path.strip("/"):
            problems.append(f"database_url: {redact_url(url)!r} names no database")
    if not 0 < settings.port < 65536:
        problems.append(f"port: {settings.port} is outside 1-65535")
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?", settings.verify_base_url):
        # Uppercased in every QR: only scheme and host are case-insensitive, so no path prefix.
        problems.append(
            f"verify_base_url: {settings.verify_base_url!r} must be http(s)://host[:port], "
            "e.g. https://verify.gov.example"
        )
    if settings.log_level.upper() not in LOG_LEVELS:
        problems.append(f"log_level: {settings.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if not settings.vault_addr.startswith(("http://", "https://")):
        problems.append(f"vault_addr: {settings.vault_addr!r} must start with http:// or https://")
    if bool(settings.vault_role_id) != bool(settings.vault_secret_id):
        problems.append("vault_role_id and vault_secret_id: set both for AppRole login, or neither")
    for name in ("os_timeout", "vault_timeout"):
        if getattr(settings, name) <= 0:
            problems.append(f"{name}: must be greater than 0")
    if settings.ansible_timeout <= 0:
        problems.append("ansible_timeout: must be greater than 0 seconds")
    if settings.clouds_yaml and not Path(settings.clouds_yaml).is_file():
        problems.append(f"clouds_yaml: {settings.clouds_yaml} does not exist")
    if not Path(settings.playbooks_dir).is_dir():
        problems.append(f"playbooks_dir: {settings.playbooks_dir} is not a directory")
    if settings.session_idle_minutes <= 0 or settings.session_absolute_hours <= 0:
        problems.append("session_idle_minutes and session_absolute_hours must be greater than 0")
    if settings.request_large_change_factor <= 1:
        problems.append("request_large_change_factor: must be greater than 1 (e.g. 2.0 = doubling)")
    if not 1 <= settings.request_large_change_approvals <= 5:
        problems.append("request_large_change_approvals: must be from 1 to 5 operators")
    if not 0 < settings.request_step_fraction <= 1:
        problems.append("request_step_fraction: must be above 0 and at most 1 (e.g. 0.25 = a quarter)")
    if not 0 <= settings.request_step_usage_threshold <= 1:
        problems.append("request_step_usage_threshold: must be from 0 to 1 (e.g. 0.8 = 80 % used)")
    problems.extend(_choice_problems(settings))
    problems.extend(_role_problems(settings))
    if not 0 < settings.verification_port < 65536:
        problems.append(f"verification_port: {settings.verification_port} is outside 1-65535")
    if not 0 <= settings.proxy_hops <= MAX_PROXY_HOPS:
        problems.append(f"proxy_hops: {settings.proxy_hops} must be from 0 (no proxy) to {MAX_PROXY_HOPS}")
    if settings.verify_rate_per_minute < 0 or settings.verify_rate_burst < 1:
        problems.append("verify_rate_per_minute must be 0 (no limit) or more, verify_rate_burst at least 1")
    if settings.verify_upload_max_bytes < 1 or settings.verify_counts_flush_seconds <= 0:
        problems.append("verify_upload_max_bytes and verify_counts_flush_seconds must be greater than 0")
    return problems + _audit_problems(settings)


def _audit_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.audit_origin or any(c.isspace() or c == "+" for c in settings.audit_origin):
        problems.append(f"audit_origin: {settings.audit_origin!r} must be non-empty, without spaces or '+'")
    if not 0 < settings.audit_sequence_seconds <= 60 or settings.audit_pending_window_seconds < 10:
        problems.append("audit_sequence_seconds must be above 0 and at most 60, "
                        "audit_pending_window_seconds at least 10")
    if settings.witness_url and not settings.witness_url.startswith(("http://", "https://")):
        problems.append(f"witness_url: {settings.witness_url!r} must start with http:// or https://")
    if settings.witness_url and not settings.witness_vkey:
        problems.append("witness_vkey: pin the witness's verifier key (its /vkey) when witness_url is set")
    return problems


def _role_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.role not in ROLES:
        problems.append(f"role: {settings.role!r} is not one of {', '.join(ROLES)}")
    if settings.role in ("console", "verification") and settings.vault_publisher_token:
        # issue 12: only the worker holds the identity that signs with the trust-root and audit keys
        problems.append(f"vault_publisher_token: the {settings.role} role must not hold it (the worker's)")
    if settings.role in ("console", "worker") and settings.vault_role_id:
        # The console may obtain the identity of any AppRole on the tenants' mount
        # (backends.keys.console_policy_hcl): no process of the control plane may be one of them.
        problems.append(f"vault_role_id: the {settings.role} role logs in with its own token "
                        "(vault_token), never as an AppRole beside the tenants'")
    return problems
