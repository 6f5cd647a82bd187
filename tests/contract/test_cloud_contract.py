"""`CloudBackendContract` run against `OpenStackCloud` on the devcloud, plus clouds.yaml error mapping."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.backends.cloud import CloudBackend
from controlplane.errors import PermanentError, TemporaryError
from tests.contract.cloud_contract import CloudBackendContract
from tests.fixtures.openstack import DEVCLOUD_CLOUD

pytestmark = [
    pytest.mark.integration,
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*"),
]

def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clouds_yaml(path: Path, auth_url: str) -> Path:
    path.write_text(
        "clouds:\n"
        "  closed:\n"
        "    auth:\n"
        f"      auth_url: {auth_url}\n"
        "      username: admin\n"
        "      password: unused-password\n"
        "      project_name: admin\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        "    region_name: RegionOne\n"
        "    identity_api_version: 3\n",
        encoding="utf-8",
    )
    return path


class TestOpenStackCloud(CloudBackendContract):
    """The contract on `OpenStackCloud` and the devcloud, plus clouds.yaml error mapping."""

    @pytest.fixture
    def backend(self, cloud: CloudBackend) -> CloudBackend:
        return cloud

    @pytest.fixture
    def unreachable_backend(self, tmp_path: Path) -> Iterator[CloudBackend]:
        from controlplane.backends.openstack import OpenStackCloud

        path = _clouds_yaml(tmp_path / "clouds.yaml", f"http://127.0.0.1:{_closed_port()}/v3")
        adapter = OpenStackCloud(cloud="closed", clouds_yaml=str(path), timeout=5)
        yield adapter
        adapter.close()

    def test_unknown_cloud_name_is_permanent_with_a_hint(self, clouds_yaml: Path) -> None:
        from controlplane.backends.openstack import OpenStackCloud

        adapter = OpenStackCloud(cloud="no-such-cloud", clouds_yaml=str(clouds_yaml))  # no I/O
        with pytest.raises(PermanentError) as caught:
            adapter.find_domain("x")
        assert not isinstance(caught.value, TemporaryError)
        assert "no-such-cloud" in caught.value.message
        assert DEVCLOUD_CLOUD in caught.value.message  # names the clouds that do exist
        assert caught.value.hint and "os_cloud" in caught.value.hint

        checks = adapter.check()
        assert not any(c.ok for c in checks)
        assert "no-such-cloud" in checks[0].detail and checks[0].hint

    def test_missing_clouds_yaml_is_permanent_and_says_how_to_get_one(
        self, tmp_path: Path
    ) -> None:
        from controlplane.backends.openstack import OpenStackCloud

        adapter = OpenStackCloud(cloud=DEVCLOUD_CLOUD, clouds_yaml=str(tmp_path / "absent.yaml"))
        with pytest.raises(PermanentError) as caught:
            adapter.get_compute_quotas("0" * 32)
        assert "absent.yaml" in caught.value.message
        assert caught.value.hint and "scripts/devcloud up" in caught.value.hint

    def test_connection_is_opened_once_and_reused(self, cloud: CloudBackend) -> None:
        from controlplane.backends.openstack import OpenStackCloud

        assert isinstance(cloud, OpenStackCloud)
        cloud.find_domain("default")
        first = cloud._conn()
        cloud.list_domains()
        assert cloud._conn() is first
