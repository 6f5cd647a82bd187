"""Nova servers and Cinder volumes (booting for usage checks, deleting for decommission), and the
inventory of everything under a project id."""

from __future__ import annotations

import logging
from typing import Any

from openstack import exceptions as sdk_exc
from openstack.compute.v2 import server as sdk_server

from controlplane.backends.cloud import ProjectResources, Server, Volume
from controlplane.backends.openstack.connection import ConnectionHolder
from controlplane.backends.openstack.errors import BACKEND, translated
from controlplane.backends.openstack.network import (
    network_from_sdk,
    port_from_sdk,
    router_from_sdk,
    security_group_from_sdk,
    subnet_from_sdk,
)
from controlplane.errors import BackendNotFound

log = logging.getLogger(__name__)


def server_from_sdk(obj: Any) -> Server:
    return Server(
        id=obj.id, name=obj.name or "", project_id=obj.project_id or "", status=obj.status or ""
    )


def volume_from_sdk(obj: Any) -> Volume:
    return Volume(
        id=obj.id,
        name=obj.name or "",
        project_id=obj.project_id or "",
        size_gb=int(obj.size or 0),
        status=obj.status or "",
    )


class ComputeMixin(ConnectionHolder):
    def _flavor_id(self, name: str) -> str:
        with translated(f"find flavor {name!r}"):
            for flavor in self._conn().compute.flavors(details=False):
                if flavor.name == name:
                    return str(flavor.id)
        raise BackendNotFound(f"flavor {name!r} does not exist", backend=BACKEND,
                              hint="scripts/devcloud up seeds flavor cp.tiny")

    def _image_id(self, name: str) -> str:
        with translated(f"find image {name!r}"):
            found = list(self._conn().image.images(name=name))
        if not found:
            raise BackendNotFound(f"image {name!r} does not exist", backend=BACKEND,
                                  hint="scripts/devcloud up seeds image cp-fake-image")
        return str(found[0].id)

    def create_server(
        self,
        name: str,
        *,
        flavor_name: str,
        image_name: str,
        network_id: str | None = None,
        wait_seconds: float = 120.0,
    ) -> Server:
        flavor_id = self._flavor_id(flavor_name)
        image_id = self._image_id(image_name)
        networks: Any = [{"uuid": network_id}] if network_id else "none"
        compute = self._conn().compute
        with translated(f"create server {name!r}"):
            server = compute.create_server(
                name=name, flavor_id=flavor_id, image_id=image_id, networks=networks
            )
            log.info("created server %s (%s)", name, server.id)
            server = compute.wait_for_server(
                server, status="ACTIVE", failures=["ERROR"], interval=1, wait=int(wait_seconds)
            )
        return server_from_sdk(server)

    def delete_server(
        self, server_id: str, *, wait_seconds: float = 120.0, missing_ok: bool = True
    ) -> None:
        compute = self._conn().compute
        with translated(f"delete server {server_id}"):
            try:
                compute.delete_server(server_id, ignore_missing=False)
            except sdk_exc.NotFoundException:
                if missing_ok:
                    return
                raise
            compute.wait_for_delete(
                sdk_server.Server.existing(id=server_id), interval=1, wait=int(wait_seconds)
            )
        log.info("deleted server %s", server_id)

    def delete_volume(self, volume_id: str, *, missing_ok: bool = True) -> None:
        with translated(f"delete volume {volume_id}"):
            self._conn().block_storage.delete_volume(volume_id, ignore_missing=missing_ok)

    def list_project_resources(self, project_id: str) -> ProjectResources:
        conn = self._conn()
        with translated(f"list resources of project {project_id}"):
            network = conn.network
            return ProjectResources(
                project_id=project_id,
                networks=tuple(
                    network_from_sdk(n) for n in network.networks(project_id=project_id)
                ),
                subnets=tuple(subnet_from_sdk(s) for s in network.subnets(project_id=project_id)),
                routers=tuple(router_from_sdk(r) for r in network.routers(project_id=project_id)),
                ports=tuple(port_from_sdk(p) for p in network.ports(project_id=project_id)),
                # Not filtered by project_id on the server: Neutron answers such a query by
                # first creating the project's "default" group, so the inventory would never
                # come back empty (even for a deleted project).
                security_groups=tuple(
                    security_group_from_sdk(g)
                    for g in network.security_groups()
                    if g.project_id == project_id
                ),
                servers=tuple(
                    server_from_sdk(s)
                    for s in conn.compute.servers(all_projects=True, project_id=project_id)
                ),
                volumes=tuple(
                    volume_from_sdk(v)
                    for v in conn.block_storage.volumes(all_projects=True, project_id=project_id)
                ),
            )
