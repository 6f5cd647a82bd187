"""The OpenStack adapter of the cloud port: the only package that imports openstacksdk.

    cloud = OpenStackCloud.from_settings(settings)      # no I/O yet
    project = cloud.ensure_project("health-prod", domain_id=domain.id, tags=["cp:org=health"])

Areas live in their own modules (identity, network, compute, quotas, health); the class below
only puts them together and knows how it was configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.backends.cloud import UserCredentials
from controlplane.backends.openstack.compute import ComputeMixin
from controlplane.backends.openstack.connection import CloudTarget
from controlplane.backends.openstack.health import HealthMixin
from controlplane.backends.openstack.identity import IdentityMixin
from controlplane.backends.openstack.network import NetworkMixin
from controlplane.backends.openstack.quotas import QuotaMixin

if TYPE_CHECKING:
    from controlplane.backends.cloud import CloudBackend
    from controlplane.settings import Settings

__all__ = ["OpenStackCloud"]


class OpenStackCloud(IdentityMixin, NetworkMixin, ComputeMixin, QuotaMixin, HealthMixin):
    """`CloudBackend` on a real OpenStack cloud named in clouds.yaml.

    One SDK connection per instance, opened on the first call and reused afterwards
    (a token, the catalog and version discovery are fetched once, as the CLI does).
    """

    def __init__(
        self,
        *,
        cloud: str,
        clouds_yaml: str = "",
        timeout: float = 30.0,
        health_timeout: float = 3.0,
        credentials: UserCredentials | None = None,
    ) -> None:
        super().__init__(
            target=CloudTarget(
                cloud=cloud, clouds_yaml=clouds_yaml, timeout=timeout, credentials=credentials
            ),
            health_timeout=health_timeout,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenStackCloud:
        return cls(
            cloud=settings.os_cloud, clouds_yaml=settings.clouds_yaml, timeout=settings.os_timeout
        )

    def as_user(self, credentials: UserCredentials) -> OpenStackCloud:
        return OpenStackCloud(
            cloud=self.target.cloud,
            clouds_yaml=self.target.clouds_yaml,
            timeout=self.target.timeout,
            health_timeout=self._health_timeout,
            credentials=credentials,
        )

    def __repr__(self) -> str:
        return f"OpenStackCloud({self.target.describe()})"


if TYPE_CHECKING:

    def _implements_the_port(cloud: OpenStackCloud) -> CloudBackend:
        return cloud  # mypy proves OpenStackCloud is a CloudBackend
