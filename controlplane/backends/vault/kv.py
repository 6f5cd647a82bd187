"""KV v2 secrets: write, read and delete (all versions) at a path under the kv mount."""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.backends.keys import Secret
from controlplane.backends.vault.client import VaultClient
from controlplane.backends.vault.names import check_kv_path


class KvMixin(VaultClient):
    def put_secret(self, path: str, data: Mapping[str, str]) -> int:
        check_kv_path(path)
        response = self._call(
            f"write secret {path}",
            lambda c: c.secrets.kv.v2.create_or_update_secret(
                path=path, secret=dict(data), mount_point=self.kv_mount
            ),
        )
        return int(response["data"]["version"])

    def get_secret(self, path: str) -> Secret:
        check_kv_path(path)
        response = self._call(
            f"read secret {path}",
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.kv_mount, raise_on_deleted_version=True
            ),
        )
        data = response["data"]
        return Secret(
            path=path,
            version=int(data["metadata"]["version"]),
            data={str(k): str(v) for k, v in (data["data"] or {}).items()},
        )

    def delete_secret(self, path: str) -> None:
        check_kv_path(path)
        self._call(
            f"delete secret {path}",
            lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(
                path=path, mount_point=self.kv_mount
            ),
        )
