"""Register the service users and the catalog in a freshly bootstrapped Keystone.

Run by `scripts/devcloud up` with the service venv's python, OS_CLIENT_CONFIG_FILE /
OS_CLOUD pointing at the devcloud admin and DEVCLOUD_SERVICE_PASSWORD set.
Each service user gets roles admin + service on project `service` (what
keystonemiddleware and nova's [service_user] need).
"""

import os

import openstack

HOST = "http://127.0.0.1"
# name -> (service type, endpoint URL)
SERVICES = {
    "neutron": ("network", f"{HOST}:9696"),
    "placement": ("placement", f"{HOST}:8778"),
    "glance": ("image", f"{HOST}:9292"),
    "nova": ("compute", f"{HOST}:8774/v2.1"),
    "cinder": ("block-storage", f"{HOST}:8776/v3"),
}


def main() -> None:
    conn = openstack.connect()
    idn = conn.identity
    password = os.environ["DEVCLOUD_SERVICE_PASSWORD"]
    project = idn.find_project("service", domain_id="default") or idn.create_project(
        name="service", domain_id="default", description="devcloud service users"
    )
    roles = [idn.find_role(r) or idn.create_role(name=r) for r in ("admin", "service")]
    existing = {s.type: s for s in idn.services()}
    for name, (stype, url) in SERVICES.items():
        user = idn.find_user(name, domain_id="default") or idn.create_user(
            name=name, password=password, domain_id="default"
        )
        for role in roles:
            idn.assign_project_role_to_user(project, user, role)
        svc = existing.get(stype) or idn.create_service(name=name, type=stype)
        if not list(idn.endpoints(service_id=svc.id)):
            for iface in ("public", "internal", "admin"):
                idn.create_endpoint(service_id=svc.id, interface=iface, url=url, region_id="RegionOne")
        print("registered", name, stype, url)


if __name__ == "__main__":
    main()
