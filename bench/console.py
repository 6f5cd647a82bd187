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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, insert, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from controlplane.accounts.models import Role  # noqa: E402
from controlplane.accounts.service import Actor, create_user, start_session  # noqa: E402
from controlplane.audit.models import AuditEvent  # noqa: E402
from controlplane.migrations import upgrade_database  # noqa: E402
from controlplane.requests.models import RequestStep, ResourceRequest  # noqa: E402
from controlplane.storage import Database  # noqa: E402
from controlplane.tenancy import registry  # noqa: E402
from controlplane.tenancy.models import (  # noqa: E402
    PlaybookEvent,
    PlaybookRun,
    Tenant,
    TenantEvent,
    TenantResource,
)
from controlplane.tenancy.service import register_specs  # noqa: E402
from controlplane.tenancy.spec import parse_spec  # noqa: E402

TEMPLATE = (REPO / "tenants" / "health.yaml").read_text(encoding="utf-8")
CLOUDS_YAML = REPO / ".devcloud" / "clouds.yaml"
KINDS = ("ministry", "governorate", "agency")
EVENT_KINDS = ("action", "action", "action", "phase", "drift", "playbook", "error")
BATCH = 5000
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


def spec_for(slug: str, n: int, staging: bool) -> str:
    text_ = TEMPLATE if staging else TEMPLATE[: TEMPLATE.index("  staging:\n")] + TEMPLATE[
        TEMPLATE.index("people:\n"):]
    return (text_.replace("slug: health", f"slug: {slug}")
            .replace("kind: ministry", f"kind: {KINDS[n % len(KINDS)]}")
            .replace("Ministry of Health", f"Bench organisation {n:03d}"))


def _bulk(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    with db.transaction() as s:
        for i in range(0, len(rows), BATCH):
            s.execute(insert(model), rows[i:i + BATCH])


def seed(db: Database, *, tenants: int, requests: int, events: int, audit: int, runs_per_tenant: int,
         rng: random.Random) -> list[str]:
    now = datetime.now(UTC)
    slugs = [f"bench-{n:03d}" for n in range(tenants)]
    specs = [parse_spec(spec_for(slug, n, staging=n % 2 == 0), source=f"tenants/{slug}.yaml")
             for n, slug in enumerate(slugs)]
    register_specs(db, specs, initiator="bench")
    with db.transaction() as s:
        for n, slug in enumerate(slugs):
            generation = 1 + n % 7
            drift = 1 if n % 17 == 0 else 0
            failed = n % 29 == 0
            s.execute(update(Tenant).where(Tenant.slug == slug).values(
                generation=generation, applied_generation=generation - 1 if failed else generation,
                phase="failed" if failed else "ready", domain_id=secrets.token_hex(16),
                drift_count=drift, last_error="quota: cores above the hypervisor limit" if failed else "",
                last_reconciled_at=now - timedelta(seconds=rng.randint(10, 3600)), attempts=0,
                baseline_digest=secrets.token_hex(32)))
    resources: list[dict[str, Any]] = []
    for n, slug in enumerate(slugs):
        for env in ("prod", "staging") if n % 2 == 0 else ("prod",):
            # Networks and routers exist; `project:*` only where the devcloud is wired in (see below).
            for key in (f"network:{env}", f"subnet:{env}", f"router:{env}", f"security_group:{env}"):
                resources.append({"tenant_slug": slug, "key": key, "external_id": secrets.token_hex(16)})
    _bulk(db, TenantResource, resources)
    print(f"  {tenants} tenants registered (ready/failed, drift on some), {len(resources)} resources")

    if requests:
        seed_requests(db, slugs, requests, rng, now)
    span = timedelta(days=180).total_seconds()
    # slugs[3] is a quiet tenant: its share of the events is the oldest (it converged long ago).
    quiet, share = slugs[3], max(1, events // tenants)
    others = [slug for slug in slugs if slug != quiet] or slugs

    def owner(i: int) -> str:
        return quiet if i < share else others[i % len(others)]

    event_rows = [{
        "tenant_slug": owner(i), "kind": (kind := EVENT_KINDS[rng.randrange(len(EVENT_KINDS))]),
        "occurred_at": now - timedelta(seconds=span * (1 - i / events)),
        "message": f"{kind}: reconcile pass {i // tenants} step {i % 13}",
        "run_id": "", "detail": {"pass": i // tenants},
    } for i in range(events)]
    _bulk(db, TenantEvent, event_rows)
    print(f"  {events} tenant events ({quiet}: only the {share} oldest)")

    run_rows, pe_rows = [], []
    for slug in slugs:
        for r in range(runs_per_tenant):
            run_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" \
                     f"{secrets.token_hex(2)}-{secrets.token_hex(6)}"
            started = now - timedelta(hours=6 * (runs_per_tenant - r))
            run_rows.append({"id": run_id, "tenant_slug": slug, "playbook": "baseline.yml",
                             "status": "successful", "rc": 0, "started_at": started,
                             "finished_at": started + timedelta(seconds=40),
                             "stats": {"ok": 12, "changed": 1, "failures": 0}})
            pe_rows.extend({"run_id": run_id, "counter": c, "event": "runner_on_ok", "task": f"task {c}",
                            "host": "localhost", "status": "ok", "message": "",
                            "created_at": started + timedelta(seconds=c)} for c in range(20))
    _bulk(db, PlaybookRun, run_rows)
    _bulk(db, PlaybookEvent, pe_rows)
    print(f"  {len(run_rows)} playbook runs, {len(pe_rows)} playbook events")

    actions = ("account:login", "tenant:update", "request:approve", "api_token:use", "tenant:reconcile")
    audit_rows = [{
        "occurred_at": now - timedelta(seconds=span * (1 - i / max(audit, 1))),
        "action": actions[i % len(actions)], "outcome": "success" if i % 23 else "failure",
        "initiator": f"user:op{i % 7}", "target": f"tenant:{slugs[i % tenants]}", "observer": "controlplane",
        "org": slugs[i % tenants], "detail": {"n": i},
    } for i in range(audit)]
    _bulk(db, AuditEvent, audit_rows)
    print(f"  {audit} audit events")
    return slugs


# state, share, the steps that led there
REQUEST_MIX = (
    ("applied", 0.70, ("created", "submitted", "approved", "applied")),
    ("applied", 0.08, ("created", "submitted", "auto-approved", "applied")),
    ("rejected", 0.07, ("created", "submitted", "rejected")),
    ("withdrawn", 0.03, ("created", "withdrawn")),
    ("failed", 0.02, ("created", "submitted", "approved", "failed")),
    ("submitted", 0.05, ("created", "submitted")),
    ("approved", 0.02, ("created", "submitted", "approved")),
    ("draft", 0.03, ("created",)),
)


def seed_requests(db: Database, slugs: list[str], count: int, rng: random.Random, now: datetime) -> None:
    span = timedelta(days=365).total_seconds()
    plan: list[tuple[str, tuple[str, ...]]] = []
    for state, share, steps in REQUEST_MIX:
        plan.extend([(state, steps)] * round(share * count))
    plan = (plan + [REQUEST_MIX[0][::2]] * count)[:count]  # rounding: top up with applied ones
    rng.shuffle(plan)
    rows, step_plans = [], []
    for i, (state, steps) in enumerate(plan):
        created = now - timedelta(seconds=span * (1 - i / count))
        org = slugs[rng.randrange(len(slugs))]
        kind = "new_environment" if i % 20 == 0 else "quota_change"
        payload: dict[str, Any] = ({"name": "staging", "description": "a staging environment",
                                    "quotas": {"compute": {"cores": 8, "ram_mb": 16384, "instances": 4}}}
                                   if kind == "new_environment"
                                   else {"quotas": {"compute": {"cores": 32 + 8 * rng.randint(-2, 6)}}})
        rows.append({"org": org, "kind": kind,
                     "environment": "staging" if kind == "new_environment" else "prod",
                     "payload": payload, "state": state, "created_by": f"user:{org}-admin",
                     "created_at": created, "updated_at": created + timedelta(minutes=len(steps) * 7),
                     "required_approvals": 2 if i % 11 == 0 else 1,
                     "applied_generation": 2 if state == "applied" else None,
                     "approved_at": created + timedelta(minutes=14)
                     if {"approved", "auto-approved"} & set(steps) else None,
                     "outcome": {"applied": "converged at generation 2", "failed": "quota refused by nova"}
                     .get(state, "")})
        step_plans.append((created, steps, org))
    ids: list[int] = []
    with db.transaction() as s:
        for i in range(0, len(rows), BATCH):
            returning = insert(ResourceRequest).returning(ResourceRequest.id, sort_by_parameter_order=True)
            result = s.execute(returning, rows[i:i + BATCH])
            ids.extend(result.scalars())
    step_rows = []
    for request_id, (created, steps, org) in zip(ids, step_plans, strict=True):
        for k, step in enumerate(steps):
            actor = f"user:{org}-admin" if step in ("created", "submitted", "withdrawn") else (
                "system:reconciler" if step in ("applied", "failed", "auto-approved") else "user:op1")
            step_rows.append({"request_id": request_id, "step": step, "actor": actor,
                              "occurred_at": created + timedelta(minutes=7 * k),
                              "comment": "within the ministry's plan" if step == "approved" else ""})
    _bulk(db, RequestStep, step_rows)
    print(f"  {len(ids)} requests ({sum(1 for st, _ in plan if st == 'submitted')} awaiting approval), "
          f"{len(step_rows)} request steps")


def operator_session(db: Database) -> str:
    with db.transaction() as s:
        user = create_user(s, username="bench-operator", password=OPERATOR_PASSWORD, role=Role.OPERATOR,
                           initiator="bench")
        return start_session(s, Actor(user.id, user.username, Role.OPERATOR, ""))


def session_cookie(secret_key: str, sid: str) -> str:
    """The cookie a completed login leaves: the app's own signing of {"sid": ...}, permanent."""
    from flask import Flask

    app = Flask("bench")
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
