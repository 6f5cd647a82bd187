"""Tenant vending benchmark: create and destroy N tenants with the control plane, and side by side
in the same run the same resources with a shell script of `openstack` and `bao` CLI commands.

    .venv/bin/python bench/vending.py                 # 10 tenants, 3 of them also by CLI script
    .venv/bin/python bench/vending.py --tenants 82 --cli-tenants 5

Needs the devcloud (scripts/devcloud up). Starts its own OpenBao dev server (bench/baoserver.py).
Prints per-tenant p50/p95 for create and destroy, the totals, and the ratio. Each tenant: a domain,
3 groups, a project, 3 role assignments, network, subnet, router with gateway and interface, a security group,
compute/network/volume quotas, and in Vault a signing key, a policy, an AppRole and a KV path.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.baoserver import BaoDevServer  # noqa: E402
from controlplane.accounts.admin import close_organisation  # noqa: E402
from controlplane.backends import Backends  # noqa: E402
from controlplane.backends.ansible import AnsibleAutomation  # noqa: E402
from controlplane.backends.openstack import OpenStackCloud  # noqa: E402
from controlplane.backends.vault import VaultKeys  # noqa: E402
from controlplane.migrations import upgrade_database  # noqa: E402
from controlplane.settings import load_settings  # noqa: E402
from controlplane.storage import Database  # noqa: E402
from controlplane.tenancy import decommission  # noqa: E402
from controlplane.tenancy.service import reconcile_many, register_specs  # noqa: E402
from controlplane.tenancy.spec import parse_spec  # noqa: E402

TEMPLATE = (REPO / "tenants" / "health.yaml").read_text(encoding="utf-8")


def prod_only_spec(slug: str) -> str:
    text = TEMPLATE[: TEMPLATE.index("  staging:\n")] + TEMPLATE[TEMPLATE.index("people:\n") :]
    return text.replace("slug: health", f"slug: {slug}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_ours(
    n: int, concurrency: int, settings, backends, db
) -> tuple[list[float], list[float], float, float]:  # type: ignore[no-untyped-def]
    slugs = [f"bv-{secrets.token_hex(3)}" for _ in range(n)]
    specs = [parse_spec(prod_only_spec(s), source=f"<bench:{s}>") for s in slugs]
    register_specs(db, specs, initiator="bench")
    t0 = time.perf_counter()
    outcomes = reconcile_many(
        slugs,
        db=db,
        backends=backends,
        settings=settings,
        concurrency=concurrency,
        run_baseline_playbook=False,
    )
    create_total = time.perf_counter() - t0
    failed = [o for o in outcomes if o.status != "changed"]
    if failed:
        raise SystemExit(f"control plane failed: {[(o.slug, o.error) for o in failed]}")
    creates = [o.seconds for o in outcomes]

    def destroy(slug: str) -> float:
        started = time.perf_counter()
        decommission.disable(db, backends, slug, initiator="bench", close_access=close_organisation)
        decommission.archive(db, backends, slug, initiator="bench")
        decommission.hold(db, slug, days=0, initiator="bench")
        decommission.delete(db, backends, slug, initiator="bench")
        return time.perf_counter() - started

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        deletes = list(pool.map(destroy, slugs))
    return creates, deletes, create_total, time.perf_counter() - t0


def run_cli(n: int, env: dict[str, str]) -> tuple[list[float], list[float]]:
    creates, deletes = [], []
    script = str(REPO / "bench" / "vending_cli.sh")
    for i in range(n):
        slug = f"bc-{secrets.token_hex(3)}"
        cidr = f"10.250.{i}.0/24"
        t0 = time.perf_counter()
        subprocess.run([script, "create", slug, cidr], env=env, check=True)
        creates.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([script, "delete", slug, cidr], env=env, check=True)
        deletes.append(time.perf_counter() - t0)
        print(f"  cli tenant {i + 1}/{n}: create {creates[-1]:.1f}s, delete {deletes[-1]:.1f}s", flush=True)
    return creates, deletes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--cli-tenants", type=int, default=3, help="tenants made by the CLI script (slow)")
    parser.add_argument("--concurrency", type=int, default=10, help="tenants (so API calls) in flight")
    args = parser.parse_args()
    clouds_yaml = os.environ.get("OS_CLIENT_CONFIG_FILE") or str(REPO / ".devcloud" / "clouds.yaml")
    workdir = Path(tempfile.mkdtemp(prefix="bench-vending-"))
    bao = BaoDevServer(workdir)
    addr, token = bao.addr, bao.token
    try:
        settings = load_settings(
            {
                "instance_path": str(workdir),
                "clouds_yaml": clouds_yaml,
                "vault_addr": addr,
                "vault_token": token,
            },
            environ={},
        )
        db = Database(os.environ.get("BENCH_DATABASE_URL") or settings.effective_database_url)
        upgrade_database(db)
        backends = Backends(
            cloud=OpenStackCloud(cloud="devcloud", clouds_yaml=clouds_yaml),
            keys=VaultKeys(addr=addr, token=token, transit_mount="transit", kv_mount="kv", timeout=10),
            automation=AnsibleAutomation.from_settings(settings),
        )
        print(f"control plane, one tenant at a time: {args.cli_tenants or 3} tenants", flush=True)
        seq_c, seq_d, _, _ = run_ours(args.cli_tenants or 3, 1, settings, backends, db)
        print(f"control plane: {args.tenants} tenants, concurrency {args.concurrency}", flush=True)
        ours_c, ours_d, ours_ct, ours_dt = run_ours(args.tenants, args.concurrency, settings, backends, db)
        print(f"  created in {ours_ct:.1f}s, destroyed in {ours_dt:.1f}s", flush=True)
        cli_env = {
            **os.environ,
            "OS_CLIENT_CONFIG_FILE": clouds_yaml,
            "OS_CLOUD": "devcloud",
            "VAULT_ADDR": addr,
            "VAULT_TOKEN": token,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        print(f"openstack CLI script: {args.cli_tenants} tenants, one at a time", flush=True)
        cli_c, cli_d = run_cli(args.cli_tenants, cli_env) if args.cli_tenants else ([], [])
    finally:
        bao.stop()
    rows = [
        ("control plane, 1 at a time", seq_c, seq_d),
        (f"control plane, {args.concurrency} at once", ours_c, ours_d),
    ]
    if cli_c:
        rows.append(("openstack + bao CLI script", cli_c, cli_d))
    print(f"\n{'per tenant (s)':<30}{'create p50':>11}{'create p95':>11}{'delete p50':>11}{'delete p95':>11}")
    for label, c, d in rows:
        print(
            f"{label:<30}{pct(c, 0.5):>11.2f}{pct(c, 0.95):>11.2f}{pct(d, 0.5):>11.2f}{pct(d, 0.95):>11.2f}"
        )
    print(
        f"\ncontrol plane: {args.tenants} tenants created in {ours_ct:.1f}s "
        f"({ours_ct / args.tenants:.2f}s each), destroyed in {ours_dt:.1f}s, concurrency {args.concurrency}"
    )
    if cli_c:
        cli_total = statistics.mean(cli_c) * args.tenants
        print(f"CLI script for {args.tenants} tenants (mean x N): {cli_total:.0f}s to create")
        print(
            f"speed-up, one tenant alone (create p50): {pct(cli_c, 0.5) / pct(seq_c, 0.5):.1f}x; "
            f"creating all {args.tenants}: {cli_total / ours_ct:.1f}x"
        )


if __name__ == "__main__":
    main()
