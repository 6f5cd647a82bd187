"""Shared services that run as managed tenants: which playbook deploys each service a spec lists,
with what settings, and removing them again at decommission."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import sysconfig
import uuid
from pathlib import Path
from typing import Any

from controlplane.backends import Backends
from controlplane.settings import REPO_ROOT, Settings
from controlplane.storage import Database
from controlplane.tenancy.baseline import PlaybookJob, run_playbook
from controlplane.tenancy.spec import TenantSpec
from controlplane.tenancy.verifier_db import grant_verifier, is_postgresql, verifier_database

VERIFICATION_SERVICE = "verification-service"
VERIFICATION_PLAYBOOK = "shared-verification.yml"
VERIFICATION_TEMPLATES = ("templates/verification.toml.j2", "templates/verification-ctl.sh.j2")
# What the release copied into the service holds (playbooks/shared-verification.yml tars these).
RELEASE_DIRS = ("controlplane", "web", "playbooks", "tenants")
# Settings the service takes over from the control plane as they are (none of them secret).
SHARED_SETTINGS = (
    "log_level",
    "verify_rate_per_minute",
    "verify_rate_burst",
    "verify_upload_max_bytes",
    "verify_counts_flush_seconds",
    "secure_cookies",
)
# No Vault credential: the service serves the trust list the control plane signed and stored
# (documents.publication), and verifies against archived public keys. Its database credential is its
# own (tenancy.verifier_db): read-only but for the verification counts; only that URL is secret.


def release_digest(root: Path = REPO_ROOT) -> str:
    """A digest of the code and assets a release holds: redeploy when any of them changes."""
    h = hashlib.sha256()
    for top in RELEASE_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@functools.cache
def current_release() -> str:
    """The release of this process: its code was loaded at start, later edits on disk are not in it."""
    return release_digest(REPO_ROOT)


def service_dir(settings: Settings, slug: str, service: str) -> Path:
    """Under verification_home, never inside instance_path (the control plane's secrets)."""
    return settings.effective_verification_home / f"{slug}-{service}"


def service_os_user(settings: Settings) -> str:
    """The OS user the service runs as: its own when the worker is root and the database is
    PostgreSQL (a SQLite file in instance_path is not readable by another user); else the worker's."""
    if os.geteuid() == 0 and is_postgresql(settings):
        return settings.verification_os_user
    return ""


def verification_extravars(
    settings: Settings,
    *,
    directory: Path,
    port: int,
    state: str = "present",
    release: str = "",
    workers: int = 2,
    threads: int = 4,  # bench/documents.py: 2-4 per worker serve the most on 2 cores
) -> dict[str, Any]:
    """The extravars of playbooks/shared-verification.yml for this control plane's settings."""
    verifier = verifier_database(settings, directory)
    return {
        "state": state,
        "service_dir": str(directory),
        "port": port,
        "workers": workers,
        "threads": threads,
        "repo": str(REPO_ROOT),
        "release": release or current_release(),
        "python": sys.executable,
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "site_packages": sysconfig.get_paths()["purelib"],
        "verify_base_url": settings.verify_base_url,
        "service_settings": {name: getattr(settings, name) for name in SHARED_SETTINGS},
        "home": str(directory.parent),
        "run_as": service_os_user(settings),
        # under a secret-looking key: the automation backend scrubs these values from what it keeps
        "service_secrets": {
            "database_url": verifier.url,
            "verification_counts_database_url": verifier.counts_url,
        },
    }


def service_jobs(spec: TenantSpec, settings: Settings) -> list[PlaybookJob]:
    """The deploy of each service the spec lists that the control plane knows how to run."""
    jobs = []
    if VERIFICATION_SERVICE in spec.services:
        release = current_release()
        extravars = verification_extravars(
            settings,
            directory=service_dir(settings, spec.slug, VERIFICATION_SERVICE),
            port=settings.verification_port,
            release=release,
        )
        jobs.append(PlaybookJob(
            VERIFICATION_PLAYBOOK, extravars, VERIFICATION_TEMPLATES, release,
            prepare=functools.partial(grant_verifier, settings=settings),
        ))
    return jobs


def remove_services(
    spec: TenantSpec, *, db: Database, backends: Backends, settings: Settings, run_id: str
) -> int:
    """Stop and remove every service of the tenant (decommission); how many were removed."""
    removed = 0
    for job in service_jobs(spec, settings):
        absent = PlaybookJob(job.playbook, {**job.extravars, "state": "absent"}, job.templates)
        run_playbook(
            spec.slug,
            absent,
            db=db,
            backends=backends,
            settings=settings,
            run_id=run_id,
            playbook_run_id=str(uuid.uuid4()),
        )
        removed += 1
    return removed
