"""The command line fails with one clear line, never a traceback, on bad settings or databases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.app import run_controlplane


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_controlplane(*args, env={"CONTROLPLANE_INSTANCE_PATH": str(tmp_path), **env}, timeout=60)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgres:/broken", "is not a database URL"),
        ("postgresql://db.example", "names no database"),
        ("mysql://root@127.0.0.1/cp", "is not a database URL"),
    ],
)
def test_serve_with_malformed_database_url_prints_one_clear_error(
    tmp_path: Path, url: str, expected: str
) -> None:
    result = _run(["serve"], tmp_path, CONTROLPLANE_DATABASE_URL=url)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "controlplane.db").exists()


def test_serve_with_unreachable_database_names_it(tmp_path: Path) -> None:
    result = _run(
        ["serve"], tmp_path, CONTROLPLANE_DATABASE_URL="postgresql://cp:pw-not-shown@127.0.0.1:1/cp"
    )
    assert result.returncode == 1
    assert "cannot connect to the database at postgresql+psycopg://cp:***@127.0.0.1:1/cp" in result.stderr
    assert "pw-not-shown" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = _run(["serve"], tmp_path)
    assert result.returncode == 1
    assert "controlplane db upgrade" in result.stderr


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    up = _run(["db", "upgrade"], tmp_path)
    assert up.returncode == 0, up.stderr
    assert "empty -> " in up.stdout
    current = _run(["db", "current"], tmp_path)
    revision = up.stdout.strip().rsplit(" ", 1)[-1]
    assert current.stdout.strip() == f"database: {revision}  code: {revision}"


def test_unknown_setting_in_environment_is_named(tmp_path: Path) -> None:
    result = _run(["settings"], tmp_path, CONTROLPLANE_VAULT_ADRESS="http://x")
    assert result.returncode == 2
    assert "CONTROLPLANE_VAULT_ADRESS: unknown setting" in result.stderr


def test_settings_command_masks_secrets(tmp_path: Path) -> None:
    result = _run(["settings"], tmp_path, CONTROLPLANE_VAULT_TOKEN="s.very-secret-token-value")
    assert result.returncode == 0
    assert "vault_token = ***" in result.stdout
    assert "very-secret" not in result.stdout
