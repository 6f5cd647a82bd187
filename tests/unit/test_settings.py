"""Settings load in layers and fail with every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import InvalidSettings
from controlplane.settings import load_settings, redact_url


def test_defaults_give_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    s = load_settings({"instance_path": str(tmp_path)}, environ={})
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'controlplane.db'}"
    assert s.port == 8080 and s.os_cloud == "devcloud"


def test_layers_file_then_env_then_overrides(tmp_path: Path) -> None:
    (tmp_path / "controlplane.toml").write_text('port = 9000\nlog_level = "DEBUG"\nos_cloud = "file"\n')
    env = {"CONTROLPLANE_INSTANCE_PATH": str(tmp_path), "CONTROLPLANE_PORT": "9100"}
    s = load_settings(environ=env)
    assert (s.port, s.log_level, s.os_cloud) == (9100, "DEBUG", "file")
    s = load_settings({"port": 9200}, environ=env)
    assert s.port == 9200


def test_upstream_openstack_and_vault_variables_are_honoured(tmp_path: Path) -> None:
    env = {"OS_CLOUD": "prod-region1", "VAULT_ADDR": "https://vault.example:8200",
           "VAULT_TOKEN": "s.abc", "CONTROLPLANE_INSTANCE_PATH": str(tmp_path)}
    s = load_settings(environ=env)
    assert (s.os_cloud, s.vault_addr, s.vault_token) == ("prod-region1", "https://vault.example:8200",
                                                         "s.abc")
    # an explicit CONTROLPLANE_ value wins over the upstream convention
    s = load_settings(environ={**env, "CONTROLPLANE_OS_CLOUD": "mine"})
    assert s.os_cloud == "mine"


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    env = {
        "CONTROLPLANE_INSTANCE_PATH": str(tmp_path),
        "CONTROLPLANE_DATABASE_URL": "not a url",
        "CONTROLPLANE_PORT": "eighty",
        "CONTROLPLANE_LOG_LEVEL": "LOUD",
        "CONTROLPLANE_VAULT_ADDR": "vault:8200",
        "CONTROLPLANE_VAULT_ROLE_ID": "only-half",
        "CONTROLPLANE_DATABSE_URL": "typo",
    }
    with pytest.raises(InvalidSettings) as info:
        load_settings(environ=env)
    text = info.value.message
    for fragment in ("database_url", "port (CONTROLPLANE_PORT)", "log_level", "vault_addr",
                     "vault_role_id and vault_secret_id", "CONTROLPLANE_DATABSE_URL: unknown"):
        assert fragment in text, fragment
    assert len(info.value.problems) == 6


def test_postgres_url_without_host_or_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match="names no database"):
        load_settings({"instance_path": str(tmp_path), "database_url": "postgresql://db.example"},
                      environ={})


def test_broken_config_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cp.toml"
    bad.write_text("port = [unclosed\n")
    with pytest.raises(InvalidSettings, match=str(bad)):
        load_settings(environ={"CONTROLPLANE_CONFIG": str(bad), "CONTROLPLANE_INSTANCE_PATH": str(tmp_path)})


def test_redacted_settings_hide_secrets_and_db_passwords(tmp_path: Path) -> None:
    s = load_settings({"instance_path": str(tmp_path), "vault_token": "s.topsecret",
                       "database_url": "postgresql://cp:hunter2hunter2@db.example/cp"}, environ={})
    shown = s.redacted()
    assert shown["vault_token"] == "***"
    assert "hunter2hunter2" not in str(shown)
    assert redact_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"


@pytest.mark.parametrize("hops", ["-1", "6"])
def test_proxy_hops_outside_zero_to_five_is_refused(tmp_path: Path, hops: str) -> None:
    env = {"CONTROLPLANE_INSTANCE_PATH": str(tmp_path), "CONTROLPLANE_PROXY_HOPS": hops}
    with pytest.raises(InvalidSettings, match="proxy_hops"):
        load_settings(environ=env)
    assert load_settings(environ={**env, "CONTROLPLANE_PROXY_HOPS": "2"}).proxy_hops == 2
