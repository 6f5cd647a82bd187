"""Console benchmark: seed a big registry, serve the real app with gunicorn, time console pages.

    .venv/bin/python bench/console.py                      # temp SQLite file
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1/postgres .venv/bin/python bench/console.py
    .venv/bin/python bench/console.py --no-devcloud        # never reach OpenStack

Seeds 100 tenants (registered specs, converged phases and generations), 10,000 resource requests
with their steps, 100,000 tenant events (one "quiet" tenant holds only the oldest), playbook runs
and audit events; then serves the app with gunicorn (`controlplane serve`, as deployed) on
127.0.0.1 and requests each console page from client threads, signed in as an operator (a session
row and a signed cookie, as a login leaves). Each page is timed at each --concurrency level; prints
p50/p95/p99 and requests/s per page next to /healthz of the same server in the same run.

With the devcloud (.devcloud/clouds.yaml, cloud "devcloud") one tenant's prod project points at the
devcloud's admin project, so its detail page reads live quotas and usage from OpenStack (read-only);
the other detail pages are of tenants whose projects are not provisioned (no OpenStack call).
Refuses to reach OpenStack while another bench/ process runs. On PostgreSQL the seeded database is a
new one (bench_<hex>), dropped at the end. --without-0005 drops the 0005 index for "before" figures.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.console_seed import seed  # noqa: E402
from controlplane.accounts.models import Role  # noqa: E402
from controlplane.accounts.service import Actor, create_user, start_session  # noqa: E402
from controlplane.migrations import upgrade_database  # noqa: E402
from controlplane.storage import Database  # noqa: E402
from controlplane.tenancy import registry  # noqa: E402

CLOUDS_YAML = REPO / ".devcloud" / "clouds.yaml"
TARGET_P95_MS = 150.0
OPERATOR_PASSWORD = "Pw-" + secrets.token_urlsafe(18)  # never printed


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- database
@contextmanager
def bench_database(server_url: str | None, workdir: Path, *, keep: bool = False) -> Iterator[str]:
    """A URL of a new empty database: on the PostgreSQL server if given (dropped after), else SQLite."""
    if not server_url:
        yield f"sqlite:///{workdir / 'controlplane.db'}"
        return
    url = make_url(server_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"bench_{secrets.token_hex(5)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept the database {name}")
        else:
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :n"), {"n": name})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()



def operator_session(db: Database) -> str:
    with db.transaction() as s:
        user = create_user(s, username="bench-operator", password=OPERATOR_PASSWORD, role=Role.OPERATOR,
                           initiator="bench")
        return start_session(s, Actor(user.id, user.username, Role.OPERATOR, ""))


def session_cookie(secret_key: str, sid: str) -> str:
    """The cookie a completed login leaves: the app's own signing of {"sid": ...}, permanent."""
    from flask import Flask

    app = Flask("bench", root_path=str(REPO))
    app.config["SECRET_KEY"] = secret_key
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    assert serializer is not None
    return str(serializer.dumps({"sid": sid, "_permanent": True}))


def devcloud_project_id(workdir: Path) -> str | None:
    """The devcloud's admin project (read-only use: quota and usage reads), or None if unreachable."""
    from controlplane.backends.openstack import OpenStackCloud
    from controlplane.errors import ControlPlaneError
    from controlplane.settings import load_settings

    settings = load_settings({"clouds_yaml": str(CLOUDS_YAML), "os_cloud": "devcloud",
                              "instance_path": str(workdir / "os-instance")}, environ={})
    try:
        cloud = OpenStackCloud.from_settings(settings)
        project = cloud.find_project("admin", domain_id="default")
    except ControlPlaneError as exc:
        print(f"  devcloud unreachable ({exc.message}); the live detail page is skipped")
        return None
    return project.id if project else None


# --------------------------------------------------------------------------- server and client
def start_server(workdir: Path, db_url: str, secret_key: str, port: int, workers: int,
                 devcloud: bool) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONTROLPLANE_", "OS_", "VAULT_", "PROMETHEUS_"))}
    env.update({
        "CONTROLPLANE_INSTANCE_PATH": str(workdir / "instance"),
        "CONTROLPLANE_DATABASE_URL": db_url,
        "CONTROLPLANE_SECRET_KEY": secret_key,
        "CONTROLPLANE_LOG_LEVEL": "WARNING",
        # An address nothing listens on: the status page reports Vault down at once, no waiting.
        "VAULT_ADDR": "http://127.0.0.1:9",
    })
    if devcloud:
        env.update({"OS_CLIENT_CONFIG_FILE": str(CLOUDS_YAML), "OS_CLOUD": "devcloud"})
    else:
        env.update({"OS_CLIENT_CONFIG_FILE": str(workdir / "no-clouds.yaml"), "OS_CLOUD": "none"})
        (workdir / "no-clouds.yaml").write_text("clouds: {}\n", encoding="utf-8")
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=env, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {workdir / 'server.log'}\n"
                             + (workdir / "server.log").read_text(errors="replace")[-3000:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not answer /healthz within 60 s")


class Client(threading.local):
    """One keep-alive connection per client thread."""

    def __init__(self, port: int, cookie: str) -> None:
        self.port, self.cookie = port, cookie
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, float, int]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            start = time.perf_counter()
            try:
                self.conn.request("GET", path, headers={"Cookie": f"cp_session={self.cookie}",
                                                        "Accept-Language": "en"})
                response = self.conn.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None  # the server closed a kept-alive connection: reconnect once
                if attempt == 2:
                    raise
                continue
            return response.status, (time.perf_counter() - start) * 1000, len(body)
        raise AssertionError("unreachable")


def measure(client: Client, path: str, count: int, concurrency: int) -> dict[str, Any]:
    for _ in range(max(2, concurrency)):  # warm caches and connections
        client.get(path)
    results: list[tuple[int, float, int]] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        r = client.get(path)
        with lock:
            results.append(r)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - start
    times = [ms for _, ms, _ in results]
    statuses = sorted({st for st, _, _ in results})
    return {"n": len(results), "p50": pct(times, 0.50), "p95": pct(times, 0.95), "p99": pct(times, 0.99),
            "mean": statistics.fmean(times), "rps": len(results) / wall, "statuses": statuses,
            "bytes": results[0][2] if results else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=20_000)
    parser.add_argument("--runs-per-tenant", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="timed requests per page and level")
    parser.add_argument("--live-count", type=int, default=30,
                        help="timed requests of the page that calls OpenStack")
    parser.add_argument("--concurrency", default="1,4",
                        help="client threads: comma-separated levels, each page is timed at each")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (4 threads each)")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--no-devcloud", action="store_true", help="do not reach OpenStack at all")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and database")
    parser.add_argument("--without-0005", action="store_true",
                        help="drop the 0005 console index after migrating (the 'before' figures)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    devcloud = not args.no_devcloud and CLOUDS_YAML.is_file()
    if devcloud:
        others = subprocess.run(["pgrep", "-f", "bench/"], capture_output=True, text=True, check=False)
        busy = [p for p in others.stdout.split() if int(p) not in (os.getpid(), os.getppid())]
        if busy:
            raise SystemExit(f"another bench/ process is running (pids {' '.join(busy)}); "
                             "wait for it, or pass --no-devcloud")

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        with bench_database(os.environ.get("BENCH_DATABASE_URL"), workdir, keep=args.keep) as db_url:
            db = Database(db_url)
            print(f"database: {db.display_url} ({db.engine.dialect.name})")
            t0 = time.perf_counter()
            upgrade_database(db)
            slugs = seed(db, tenants=args.tenants, requests=args.requests, events=args.events,
                         audit=args.audit, runs_per_tenant=args.runs_per_tenant, rng=rng)
            if args.without_0005:
                with db.transaction() as s:
                    s.execute(text("DROP INDEX ix_tenant_events_tenant_id"))
                print("  dropped ix_tenant_events_tenant_id (0005): 'before' figures")
            sid = operator_session(db)
            live_slug = None
            if devcloud:
                project_id = devcloud_project_id(workdir)
                if project_id:
                    live_slug = slugs[1]  # prod only: one environment's quotas and usage per view
                    with db.transaction() as s:
                        registry.remember_resource(s, live_slug, "project:prod", project_id)
            if db.engine.dialect.name == "postgresql":
                with db.engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
            db.dispose()
            print(f"seeded in {time.perf_counter() - t0:.1f} s")

            secret_key = secrets.token_urlsafe(48)
            server = start_server(workdir, db_url, secret_key, args.port, args.workers, devcloud)
            client = Client(args.port, session_cookie(secret_key, sid))
            pages = [("baseline /healthz", "/healthz"), ("tenants dashboard", "/tenants/"),
                     ("tenant detail (no OpenStack)", f"/tenants/{slugs[2]}"),
                     ("tenant detail (quiet tenant)", f"/tenants/{slugs[3]}")]
            if live_slug:
                pages.append(("tenant detail (live devcloud)", f"/tenants/{live_slug}"))
            pages += [("requests queue", "/requests/"), ("status page", "/status"),
                      ("baseline /healthz (again)", "/healthz")]
            rows, skipped = [], []
            for name, path in pages:
                status, _, _ = client.get(path)
                if status == 404:
                    skipped.append(f"{name} ({path}): 404, not there yet")
                    continue
                if status != 200:
                    raise SystemExit(f"{name} ({path}) answered {status} before timing; see the server log "
                                     f"{workdir / 'server.log'}")
                count = args.live_count if "live" in name else args.count
                for level in levels:
                    rows.append((name, level, measure(client, path, count, level)))

            print(f"\n{args.count} requests per page and level ({args.live_count} of the live page), "
                  f"gunicorn {args.workers} workers x 4 threads, {db.engine.dialect.name}, "
                  f"{os.cpu_count()} CPUs shared with the client; target p95 < {TARGET_P95_MS:.0f} ms")
            print(f"{'page':32} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} "
                  f"{'KiB':>6}  status")
            for name, level, m in rows:
                verdict = "" if name.startswith("baseline") else (
                    "  ok" if m["p95"] < TARGET_P95_MS else "  MISSES TARGET")
                print(f"{name:32} {level:7d} {m['p50']:8.1f} {m['p95']:8.1f} {m['p99']:8.1f} {m['rps']:8.1f} "
                      f"{m['bytes'] / 1024:6.1f}  {','.join(map(str, m['statuses']))}{verdict}")
            for line in skipped:
                print(f"skipped: {line}")
            print("load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
