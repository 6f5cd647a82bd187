"""The web layer's one Services object and the verification role's import boundary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from controlplane.backends import Backends
from controlplane.errors import InvalidSettings, ServiceUnavailable
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.web.public.verify_views import VerificationState
from controlplane.web.services import Services, services, services_of


def _failing_backends_factory(calls: list[int]) -> Backends:
    """Fault injection: what load_backends raises when the Vault settings are incomplete."""
    calls.append(1)
    raise InvalidSettings(["vault_token: not set (put it in controlplane.toml)"])


def _unused(*_args: object) -> object:
    raise AssertionError("not built in this test")


def _services(settings: Settings, database: Database, calls: list[int]) -> Services:
    return Services(settings=settings, database=database,
                    backends_factory=lambda: _failing_backends_factory(calls),
                    signer_factory=_unused,  # type: ignore[arg-type]
                    mfa_box_factory=_unused)  # type: ignore[arg-type]


def test_backends_that_cannot_be_built_are_a_503_saying_why_and_tried_again(
        settings: Settings, database: Database) -> None:
    calls: list[int] = []
    held = _services(settings, database, calls)
    for attempt in (1, 2):
        with pytest.raises(ServiceUnavailable) as raised:
            _ = held.backends
        assert raised.value.status == 503
        assert "vault_token: not set" in raised.value.message
        assert isinstance(raised.value.__cause__, InvalidSettings)
        assert len(calls) == attempt  # not cached: Vault configured later is picked up
    with pytest.raises(ServiceUnavailable):
        _ = held.signer  # the signer needs the key backend
    assert held.built_signer is None
    held.forget_signing_key("moh")  # nothing built yet: nothing to forget, no error


def test_a_verifier_not_installed_is_a_503(settings: Settings, database: Database) -> None:
    held = _services(settings, database, [])
    with pytest.raises(ServiceUnavailable) as raised:
        _ = held.verifier
    assert raised.value.status == 503
    assert raised.value.to_dict()["error"] == "Service unavailable"


def test_the_app_keeps_its_services_under_one_key(app: Flask) -> None:
    ours = [key for key in app.extensions if key.startswith("controlplane")]
    assert ours == ["controlplane"]
    held = services_of(app)
    assert isinstance(held.verifier, VerificationState)
    assert held.closers  # the verification counter at least is flushed at shutdown
    with app.app_context():
        assert services() is held


PROBE = r"""
import json, sys
from controlplane.app import close_app, create_app
app = create_app()
client = app.test_client()
out = {"verify": client.get("/api/v1/verify/AAAA").status_code, "login": client.get("/login").status_code,
       "readyz": client.get("/readyz").get_json()}
out["loaded"] = sorted(m for m in sys.modules if m.startswith((
    "controlplane.web.console", "controlplane.web.api", "controlplane.accounts",
    "controlplane.backends.vault", "controlplane.backends.openstack", "controlplane.backends.ansible",
    "controlplane.documents.signer", "hvac", "openstack", "ansible_runner")))
close_app(app)
print(json.dumps(out))
"""


def test_the_verification_role_loads_no_console_api_accounts_vault_or_cloud_code(
        tmp_path: Path, database: Database, settings: Settings) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "CONTROLPLANE_INSTANCE_PATH": str(tmp_path / "verifier"),
           "CONTROLPLANE_DATABASE_URL": settings.effective_database_url,
           "CONTROLPLANE_ROLE": "verification"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["verify"] == 200  # the public verdict is served (malformed, but answered)
    assert out["login"] == 404  # no console here at all
