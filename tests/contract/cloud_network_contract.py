"""The network part of the cloud port's contract: networks, subnets, routers, security groups and
their clean-up. Mixed into `CloudBackendContract`, whose fixtures (``backend``, ``project``,
``unique_name``, ``janitor``) it uses."""

from __future__ import annotations

import pytest

from controlplane.backends.cloud import CloudBackend, Project, SecurityGroupRuleSpec
from controlplane.errors import BackendNotFound, PermanentError
from tests.fixtures.openstack import purge_project

EXTERNAL_NETWORK = "public"  # seeded by scripts/devcloud up


class NetworkContract:
    """Network resources every CloudBackend must manage idempotently; ingress denied by default."""

    # ------------------------------------------------------------------ network
    def test_network_stack_is_idempotent_with_gateway_on_the_external_network(
        self, backend: CloudBackend, project: Project, unique_name: str
    ) -> None:
        public = backend.find_external_network(EXTERNAL_NETWORK)
        assert public is not None and public.external

        net = backend.ensure_network(f"{unique_name}-net", project_id=project.id)
        subnet = backend.ensure_subnet(
            f"{unique_name}-subnet", network_id=net.id, project_id=project.id,
            cidr="10.42.0.0/24", gateway_ip="10.42.0.1", dns_nameservers=["10.42.0.2"],
        )
        router = backend.ensure_router(
            f"{unique_name}-router", project_id=project.id, external_network_id=public.id
        )
        interface = backend.ensure_router_interface(router.id, subnet_id=subnet.id)

        assert backend.ensure_network(f"{unique_name}-net", project_id=project.id).id == net.id
        assert backend.ensure_subnet(
            f"{unique_name}-subnet", network_id=net.id, project_id=project.id, cidr="10.42.0.0/24"
        ) == subnet
        again = backend.ensure_router(
            f"{unique_name}-router", project_id=project.id, external_network_id=public.id
        )
        assert again.id == router.id
        assert backend.ensure_router_interface(router.id, subnet_id=subnet.id) == interface
        assert backend.list_router_interfaces(router.id) == [interface]
        with pytest.raises(PermanentError):  # host bits set: refused before anything is sent
            backend.ensure_subnet("bad", network_id=net.id, project_id=project.id,
                                  cidr="10.44.0.1/24")

        assert (subnet.cidr, subnet.gateway_ip, subnet.dns_nameservers) == (
            "10.42.0.0/24", "10.42.0.1", ("10.42.0.2",))
        assert net.project_id == project.id and not net.external
        assert router.external_network_id == public.id
        assert router.external_ips  # an address on the external network
        assert backend.get_network(net.id).subnet_ids == (subnet.id,)
        found = backend.list_project_resources(project.id)
        assert [n.id for n in found.networks] == [net.id]
        assert [r.id for r in found.routers] == [router.id]
        assert interface.port_id in {p.id for p in found.ports}
        assert interface.port_id in {p.id for p in backend.list_ports(network_id=net.id)}

    def test_router_without_gateway_gets_it_on_a_later_ensure(
        self, backend: CloudBackend, project: Project, unique_name: str
    ) -> None:
        public = backend.find_external_network(EXTERNAL_NETWORK)
        assert public is not None
        bare = backend.ensure_router(f"{unique_name}-r", project_id=project.id)
        assert bare.external_network_id is None

        fixed = backend.ensure_router(
            f"{unique_name}-r", project_id=project.id, external_network_id=public.id
        )
        assert (fixed.id, fixed.external_network_id) == (bare.id, public.id)

    def test_new_security_group_denies_ingress_and_rules_are_idempotent(
        self, backend: CloudBackend, project: Project, unique_name: str
    ) -> None:
        group = backend.ensure_security_group(f"{unique_name}-web", project_id=project.id)
        assert backend.ensure_security_group(f"{unique_name}-web", project_id=project.id) == group

        assert group.ingress_rules == ()
        assert {r.spec.ethertype for r in group.egress_rules} == {"IPv4", "IPv6"}
        assert all(r.spec.protocol is None and r.spec.remote_ip_prefix is None
                   for r in group.egress_rules)

        ssh = SecurityGroupRuleSpec(direction="ingress", protocol="tcp", port_range_min=22,
                                    port_range_max=22, remote_ip_prefix="10.0.0.0/8")
        rule = backend.add_security_group_rule(group.id, ssh)
        assert rule.spec == ssh and rule.security_group_id == group.id
        assert backend.add_security_group_rule(group.id, ssh).id == rule.id
        assert rule.id in {r.id for r in backend.list_security_group_rules(group.id)}
        found = backend.find_security_group(f"{unique_name}-web", project_id=project.id)
        assert found is not None and [r.id for r in found.ingress_rules] == [rule.id]

        backend.delete_security_group_rule(rule.id)
        backend.delete_security_group_rule(rule.id)  # already gone: done
        assert rule.id not in {r.id for r in backend.list_security_group_rules(group.id)}

    def test_project_resources_are_empty_after_deletes(
        self, backend: CloudBackend, project: Project, unique_name: str
    ) -> None:
        public = backend.find_external_network(EXTERNAL_NETWORK)
        assert public is not None
        net = backend.ensure_network(f"{unique_name}-net", project_id=project.id)
        subnet = backend.ensure_subnet(f"{unique_name}-sn", network_id=net.id,
                                       project_id=project.id, cidr="10.43.0.0/24")
        router = backend.ensure_router(f"{unique_name}-rt", project_id=project.id,
                                       external_network_id=public.id)
        backend.ensure_router_interface(router.id, subnet_id=subnet.id)
        backend.ensure_security_group(f"{unique_name}-sg", project_id=project.id)
        before = backend.list_project_resources(project.id)
        assert before.summary()["networks"] == 1 and before.summary()["subnets"] == 1
        assert before.routers and before.ports and before.security_groups
        assert not before.is_empty

        purge_project(backend, project.id)

        after = backend.list_project_resources(project.id)
        assert after.is_empty, after.summary()
        with pytest.raises(BackendNotFound):
            backend.get_network(net.id)
        with pytest.raises(BackendNotFound):
            backend.delete_network(net.id, missing_ok=False)
        backend.delete_network(net.id)  # already gone: done
