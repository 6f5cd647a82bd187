"""Which post-provision playbooks a tenant gets, and when the reconciler must run them again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controlplane.settings import REPO_ROOT, Settings, load_settings
from controlplane.tenancy.baseline import PLAYBOOK, baseline_job, playbooks_digest
from controlplane.tenancy.services import (
    VERIFICATION_PLAYBOOK,
    VERIFICATION_TEMPLATES,
    release_digest,
    service_jobs,
)
from controlplane.tenancy.spec import TenantSpec, load_spec_file


@pytest.fixture
def playbooks(tmp_path: Path) -> Path:
    copy = tmp_path / "playbooks"
    shutil.copytree(REPO_ROOT / "playbooks", copy)
    return copy


@pytest.fixture
def settings(tmp_path: Path, playbooks: Path) -> Settings:
    return load_settings(
        {"instance_path": str(tmp_path / "instance"), "playbooks_dir": str(playbooks),
         "database_url": "postgresql://cp:s3cret-pw@db.example/cp", "vault_token": "hvs.bench-token"},
        environ={},
    )


@pytest.fixture
def verification() -> TenantSpec:
    return load_spec_file(REPO_ROOT / "tenants" / "shared-verification.yaml")


def test_only_a_spec_listing_the_service_deploys_it(settings: Settings, verification: TenantSpec) -> None:
    [job] = service_jobs(verification, settings)
    assert job.playbook == VERIFICATION_PLAYBOOK and job.templates == VERIFICATION_TEMPLATES
    assert all((Path(settings.playbooks_dir) / name).is_file() for name in (job.playbook, *job.templates))
    assert job.extravars["state"] == "present"
    assert job.extravars["port"] == settings.verification_port
    # its own directory, outside the control plane's instance folder
    home = Path(settings.instance_path).resolve().parent / "verification-home"
    assert job.extravars["service_dir"] == str(home / "shared-verification-verification-service")
    assert not Path(job.extravars["service_dir"]).is_relative_to(Path(settings.instance_path).resolve())
    # its own database role travels under a key the automation backend scrubs; never the control
    # plane's read-write credential, no Vault credential at all
    password = (Path(settings.instance_path) / "verifier-db-password").read_text()
    assert job.extravars["service_secrets"] == {
        "database_url": f"postgresql://cp_verify:{password}@db.example/cp",
        "verification_counts_database_url": "",
    }
    assert "s3cret-pw" not in repr(job.extravars) and "hvs.bench-token" not in repr(job.extravars)
    assert job.prepare is not None  # the worker grants the role before the playbook runs
    health = load_spec_file(REPO_ROOT / "tenants" / "health.yaml")
    assert service_jobs(health, settings) == []


def test_digest_changes_with_settings_playbook_template_and_release(
    settings: Settings, verification: TenantSpec, playbooks: Path
) -> None:
    def digest(s: Settings) -> str:
        jobs = [baseline_job(verification, s), *service_jobs(verification, s)]
        return playbooks_digest(verification, jobs, s)

    first = digest(settings)
    assert digest(settings) == first, "nothing changed, nothing to run"
    assert digest(settings.replace(verification_port=8099)) != first
    assert digest(settings.replace(verify_rate_burst=5)) != first
    assert digest(settings.replace(database_url="postgresql://cp:s3cret-pw@db2.example/cp")) != first
    template = playbooks / VERIFICATION_TEMPLATES[0]
    template.write_text(template.read_text() + "# changed\n")
    assert digest(settings) != first
    baseline = playbooks / PLAYBOOK
    before = digest(settings)
    baseline.write_text(baseline.read_text() + "# changed\n")
    assert digest(settings) != before


def test_release_digest_follows_the_code(tmp_path: Path) -> None:
    (tmp_path / "controlplane").mkdir()
    (tmp_path / "controlplane" / "x.py").write_text("A = 1\n")
    (tmp_path / "controlplane" / "__pycache__").mkdir()
    first = release_digest(tmp_path)
    (tmp_path / "controlplane" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert release_digest(tmp_path) == first, "compiled files are not the release"
    (tmp_path / "controlplane" / "x.py").write_text("A = 2\n")
    assert release_digest(tmp_path) != first
