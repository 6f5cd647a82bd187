"""Cheap health checks for `scripts/devcloud status` / idempotent `up`.

  check.py compute   exit 0 if a nova-compute service is up+enabled (prints its host)
  check.py amqp      exit 0 if the broker accepts a login at $DEVCLOUD_AMQP_URL

`compute` uses only the standard library (fast start) and reads the admin
password from DEVCLOUD_ADMIN_PASSWORD; `amqp` uses kombu from the service venv.
"""

import json
import os
import sys
import urllib.request

KEYSTONE = "http://127.0.0.1:5000/v3"
NOVA = "http://127.0.0.1:8774/v2.1"


def _token() -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"name": "Default"},
                        "password": os.environ["DEVCLOUD_ADMIN_PASSWORD"],
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    req = urllib.request.Request(
        f"{KEYSTONE}/auth/tokens",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["X-Subject-Token"]


def compute() -> int:
    req = urllib.request.Request(
        f"{NOVA}/os-services?binary=nova-compute", headers={"X-Auth-Token": _token()}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        services = json.load(resp)["services"]
    up = [s["host"] for s in services if s["state"] == "up" and s["status"] == "enabled"]
    print(",".join(up) or "no nova-compute up")
    return 0 if up else 1


def amqp() -> int:
    import kombu  # service venv only; the compute check stays stdlib-only

    # oslo.messaging's rabbit:// is kombu's amqp:// (py-amqp transport)
    url = os.environ["DEVCLOUD_AMQP_URL"].replace("rabbit://", "amqp://", 1)
    with kombu.Connection(url, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)
    return 0


if __name__ == "__main__":
    try:
        if sys.argv[1] == "compute":
            sys.exit(compute())
        sys.exit(amqp())
    except Exception as exc:  # any failure (refused, 401, timeout) means "not healthy"
        print(f"{type(exc).__name__}: {exc}")
        sys.exit(1)
