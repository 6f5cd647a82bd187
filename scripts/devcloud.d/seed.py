"""Seed what the control plane expects in a fresh devcloud, then wait for compute.

- external flat network `public` (router:external, not shared) with subnet
  `public-subnet` 203.0.113.0/24 (TEST-NET-3; gateway .1, pool .10-.250, no DHCP):
  the control plane attaches tenant routers to it;
- flavor `cp.tiny` (64 MB, 1 vCPU, 1 GB disk: nova refuses disk=0 for image boots);
- public image `cp-fake-image` (1 KiB of zeros; the fake virt driver never reads it);
- waits until a nova-compute service is up and its hypervisor is listed.
Idempotent: existing objects are kept.
"""

import io
import sys
import time

import openstack


def main() -> None:
    conn = openstack.connect()
    net = conn.network
    public = net.find_network("public")
    if public is None:
        public = net.create_network(
            name="public",
            is_router_external=True,
            is_shared=False,
            provider_network_type="flat",
            provider_physical_network="public",
        )
    if net.find_subnet("public-subnet", network_id=public.id) is None:
        net.create_subnet(
            network_id=public.id,
            name="public-subnet",
            ip_version=4,
            cidr="203.0.113.0/24",
            gateway_ip="203.0.113.1",
            allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.250"}],
            is_dhcp_enabled=False,
        )
    print("network public / public-subnet 203.0.113.0/24")

    if conn.image.find_image("cp-fake-image") is None:
        conn.create_image(
            "cp-fake-image",
            data=io.BytesIO(b"\0" * 1024),
            disk_format="raw",
            container_format="bare",
            visibility="public",
            wait=True,
        )
    print("image cp-fake-image")

    if conn.compute.find_flavor("cp.tiny") is None:
        conn.compute.create_flavor(name="cp.tiny", ram=64, vcpus=1, disk=1, is_public=True)
    print("flavor cp.tiny")

    deadline = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 180)
    while True:
        up = [
            s.host
            for s in conn.compute.services(binary="nova-compute")
            if s.state == "up" and s.status == "enabled"
        ]
        hyps = [h.name for h in conn.compute.hypervisors()]
        if up and hyps:
            print("compute up:", ",".join(up), "hypervisors:", ",".join(hyps))
            return
        if time.monotonic() > deadline:
            sys.exit(f"nova-compute not up: services up={up} hypervisors={hyps}")
        time.sleep(1)


if __name__ == "__main__":
    main()
