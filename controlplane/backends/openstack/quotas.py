"""Quotas with usage: Nova (``os-quota-sets/{id}/detail``), Neutron (``quotas/{id}/details``)
and Cinder (``os-quota-sets/{id}?usage=True``): one GET each."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controlplane.backends.cloud import ComputeQuotas, NetworkQuotas, Quota, VolumeQuotas
from controlplane.backends.openstack.connection import ConnectionHolder
from controlplane.backends.openstack.errors import translated

log = logging.getLogger(__name__)

COMPUTE_FIELDS = ("cores", "ram", "instances")
VOLUME_FIELDS = ("gigabytes", "volumes", "snapshots")
# Our name -> the openstacksdk attribute of network.v2 Quota / QuotaDetails.
NETWORK_FIELDS = {
    "networks": "networks",
    "subnets": "subnets",
    "ports": "ports",
    "routers": "routers",
    "floatingips": "floating_ips",
    "security_groups": "security_groups",
    "security_group_rules": "security_group_rules",
}


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def quota_from_set(quota_set: Any, name: str) -> Quota:
    """A Nova/Cinder QuotaSet attribute and, when fetched with usage, its ``usage`` entry."""
    usage: Mapping[str, Any] = getattr(quota_set, "usage", None) or {}
    limit = getattr(quota_set, name)
    return Quota(limit=int(limit) if limit is not None else -1, in_use=_int_or_none(usage.get(name)))


def quota_from_details(value: Any) -> Quota:
    """One Neutron quota: ``{"limit": 10, "used": 1, "reserved": 0}`` from the details call,
    or a bare limit from an update."""
    if isinstance(value, Mapping):
        return Quota(limit=int(value.get("limit", -1)), in_use=_int_or_none(value.get("used")))
    return Quota(limit=int(value) if value is not None else -1)


def compute_quotas_from(quota_set: Any) -> ComputeQuotas:
    return ComputeQuotas(**{f: quota_from_set(quota_set, f) for f in COMPUTE_FIELDS})


def volume_quotas_from(quota_set: Any) -> VolumeQuotas:
    return VolumeQuotas(**{f: quota_from_set(quota_set, f) for f in VOLUME_FIELDS})


def network_quotas_from(quota: Any) -> NetworkQuotas:
    return NetworkQuotas(
        **{ours: quota_from_details(getattr(quota, sdk)) for ours, sdk in NETWORK_FIELDS.items()}
    )


def _given(**limits: int | None) -> dict[str, Any]:
    return {k: int(v) for k, v in limits.items() if v is not None}


class QuotaMixin(ConnectionHolder):
    # ------------------------------------------------------------------ compute
    def get_compute_quotas(self, project_id: str) -> ComputeQuotas:
        with translated(f"get compute quotas of project {project_id}"):
            return compute_quotas_from(self._conn().compute.get_quota_set(project_id, usage=True))

    def set_compute_quotas(
        self,
        project_id: str,
        *,
        cores: int | None = None,
        ram: int | None = None,
        instances: int | None = None,
    ) -> ComputeQuotas:
        limits = _given(cores=cores, ram=ram, instances=instances)
        if not limits:
            return self.get_compute_quotas(project_id)
        with translated(f"set compute quotas of project {project_id}"):
            updated = self._conn().compute.update_quota_set(project_id, **limits)
        log.info("set compute quotas of project %s: %s", project_id, limits)
        return compute_quotas_from(updated)

    def reset_compute_quotas(self, project_id: str) -> None:
        with translated(f"reset compute quotas of project {project_id}"):
            self._conn().compute.revert_quota_set(project_id)

    # ------------------------------------------------------------------ network
    def get_network_quotas(self, project_id: str) -> NetworkQuotas:
        with translated(f"get network quotas of project {project_id}"):
            return network_quotas_from(self._conn().network.get_quota(project_id, details=True))

    def set_network_quotas(
        self,
        project_id: str,
        *,
        networks: int | None = None,
        subnets: int | None = None,
        ports: int | None = None,
        routers: int | None = None,
        floatingips: int | None = None,
        security_groups: int | None = None,
        security_group_rules: int | None = None,
    ) -> NetworkQuotas:
        limits = _given(
            networks=networks,
            subnets=subnets,
            ports=ports,
            routers=routers,
            floatingips=floatingips,
            security_groups=security_groups,
            security_group_rules=security_group_rules,
        )
        if not limits:
            return self.get_network_quotas(project_id)
        with translated(f"set network quotas of project {project_id}"):
            updated = self._conn().network.update_quota(
                project_id, **{NETWORK_FIELDS[k]: v for k, v in limits.items()}
            )
        log.info("set network quotas of project %s: %s", project_id, limits)
        return network_quotas_from(updated)

    def reset_network_quotas(self, project_id: str) -> None:
        with translated(f"reset network quotas of project {project_id}"):
            self._conn().network.delete_quota(project_id, ignore_missing=True)

    # ------------------------------------------------------------------ volume
    def get_volume_quotas(self, project_id: str) -> VolumeQuotas:
        with translated(f"get volume quotas of project {project_id}"):
            return volume_quotas_from(
                self._conn().block_storage.get_quota_set(project_id, usage=True)
            )

    def set_volume_quotas(
        self,
        project_id: str,
        *,
        gigabytes: int | None = None,
        volumes: int | None = None,
        snapshots: int | None = None,
    ) -> VolumeQuotas:
        limits = _given(gigabytes=gigabytes, volumes=volumes, snapshots=snapshots)
        if not limits:
            return self.get_volume_quotas(project_id)
        with translated(f"set volume quotas of project {project_id}"):
            updated = self._conn().block_storage.update_quota_set(project_id, **limits)
        log.info("set volume quotas of project %s: %s", project_id, limits)
        return volume_quotas_from(updated)

    def reset_volume_quotas(self, project_id: str) -> None:
        with translated(f"reset volume quotas of project {project_id}"):
            self._conn().block_storage.revert_quota_set(project_id)
