"""End-to-end check of a running devcloud (`scripts/devcloud smoke`).

As the control plane would: a domain + project + tenant user, network + subnet +
router with its gateway on `public`, compute/network/volume quotas, one server
(cp.tiny / cp-fake-image, networks="none") to ACTIVE; then deletes everything.
Uses the service venv's openstacksdk and OS_CLOUD=devcloud.
"""

import secrets
import sys
import time

import openstack


def build(admin, tag: str, password: str, dom, created: list) -> None:
    """Create the tenant's objects; `created` records them for cleanup."""
    idn, net = admin.identity, admin.network
    proj = idn.create_project(name=tag, domain_id=dom.id)
    created.append(("project", proj))
    user = idn.create_user(name=tag, domain_id=dom.id, password=password)
    created.append(("user", user))
    idn.assign_project_role_to_user(proj, user, idn.find_role("member"))

    public = net.find_network("public", ignore_missing=False)
    n = net.create_network(name=f"{tag}-net", project_id=proj.id)
    created.append(("network", n))
    s = net.create_subnet(
        network_id=n.id, name=f"{tag}-subnet", ip_version=4, cidr="10.77.0.0/24",
        project_id=proj.id,
    )  # fmt: skip
    r = net.create_router(
        name=f"{tag}-router", project_id=proj.id, external_gateway_info={"network_id": public.id}
    )
    created.append(("router", r))
    net.add_interface_to_router(r, subnet_id=s.id)
    created.append(("router-interface", (r, s)))
    gw_ips = [ip["ip_address"] for ip in r.external_gateway_info["external_fixed_ips"]]
    print("router gateway on public:", gw_ips)

    admin.set_compute_quotas(proj.id, instances=5, cores=8, ram=8192)
    admin.set_network_quotas(proj.id, networks=5, subnets=5, routers=2, ports=50)
    admin.set_volume_quotas(proj.id, volumes=5, gigabytes=100)
    created.append(("quotas", proj))
    print(
        "quotas: instances", admin.get_compute_quotas(proj.id).instances,
        "networks", net.get_quota(proj.id).networks,
        "volumes", admin.get_volume_quotas(proj.id).volumes,
    )  # fmt: skip

    tenant = openstack.connect(
        auth_url=admin.config.auth["auth_url"], username=tag, password=password,
        project_name=tag, user_domain_name=tag, project_domain_name=tag,
        region_name="RegionOne", load_yaml_config=False, load_envvars=False,
    )  # fmt: skip
    flavor = tenant.compute.find_flavor("cp.tiny", ignore_missing=False)
    image = tenant.image.find_image("cp-fake-image", ignore_missing=False)
    t1 = time.monotonic()
    srv = tenant.compute.create_server(
        name=f"{tag}-vm", image_id=image.id, flavor_id=flavor.id, networks="none"
    )
    created.append(("server", (tenant, srv)))
    srv = tenant.compute.wait_for_server(srv, status="ACTIVE", wait=120)
    host = admin.compute.get_server(srv.id).hypervisor_hostname  # admin-only field
    print(f"server {srv.status} in {time.monotonic() - t1:.1f}s on {host}")


def destroy(admin, created: list) -> None:
    """Delete what `build` created, newest first; 404s are errors here."""
    idn, net = admin.identity, admin.network
    for kind, obj in reversed(created):
        if kind == "server":
            conn, srv = obj
            conn.compute.delete_server(srv, ignore_missing=False)
            conn.compute.wait_for_delete(srv, wait=120)
        elif kind == "router-interface":
            net.remove_interface_from_router(obj[0], subnet_id=obj[1].id)
        elif kind == "router":
            net.delete_router(obj, ignore_missing=False)
        elif kind == "network":
            net.delete_network(obj, ignore_missing=False)  # removes its subnet
        elif kind == "quotas":
            admin.delete_compute_quotas(obj.id)
            net.delete_quota(obj.id)
            admin.delete_volume_quotas(obj.id)
        elif kind == "user":
            idn.delete_user(obj, ignore_missing=False)
        elif kind == "project":
            for sg in net.security_groups(project_id=obj.id):  # neutron's default SG
                net.delete_security_group(sg)
            idn.delete_project(obj, ignore_missing=False)


def main() -> None:
    t0 = time.monotonic()
    admin = openstack.connect()
    tag = "smoke-" + secrets.token_hex(4)
    dom = admin.identity.create_domain(name=tag)
    created: list = []
    try:
        build(admin, tag, secrets.token_urlsafe(16), dom, created)
    finally:
        destroy(admin, created)
        admin.identity.update_domain(dom, is_enabled=False)
        admin.identity.delete_domain(dom, ignore_missing=False)
    left = [x.name for x in admin.network.networks() if x.name.startswith(tag)]
    if left:
        sys.exit(f"left behind: {left}")
    print(f"smoke OK in {time.monotonic() - t0:.1f}s (all created objects deleted)")


if __name__ == "__main__":
    main()
