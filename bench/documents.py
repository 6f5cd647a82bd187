"""Documents benchmark, side by side in one run: issuance with batched vs single-call signing, and
verification over HTTP with a 1,000,000-document registry vs a bare Flask JSON endpoint.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/documents.py
    .venv/bin/python bench/documents.py                       # temp SQLite file
    CONTROLPLANE_BENCH_DOCS=2000 CONTROLPLANE_BENCH_REGISTRY=50000 CONTROLPLANE_BENCH_SECONDS=4 \\
        .venv/bin/python bench/documents.py                   # a quick smoke run

Issuance: starts its own OpenBao dev server (bench/baoserver.py), gives one organisation its key,
policy and AppRole as tenancy apply does, and issues through `issue_documents` with the real
OrgSigner: CONTROLPLANE_BENCH_DOCS documents in batches of 1,000 (each signed by transit
batch_input requests of 400 items sent at once, and registered by one COPY), then
CONTROLPLANE_BENCH_SINGLE documents one per call (one Vault sign call each). Both include building
the claims, COSE and the registry write; signing alone is timed too.

Verification: the documents issued above are the signed subset (5 % of them revoked); the registry
is filled up to CONTROLPLANE_BENCH_REGISTRY rows (COPY on PostgreSQL) so the index is full size.
The app is served in the verification role by gunicorn (CONTROLPLANE_BENCH_WORKERS=2 workers,
CONTROLPLANE_BENCH_WORKER_CLASS=gthread, CONTROLPLANE_BENCH_THREADS=4 threads, as
playbooks/shared-verification.yml deploys it) next to a bare Flask app returning a constant JSON
with the same gunicorn settings; the closed loop also reports gunicorn's CPU per request.
A Python load generator in this process (threads, keep-alive http.client) runs an open loop at
CONTROLPLANE_BENCH_RATE req/s (latency measured from each request's scheduled time, so queueing
counts) and a closed loop of CONTROLPLANE_BENCH_CLIENTS clients for the maximum throughput,
CONTROLPLANE_BENCH_SECONDS each; the closed loop runs CONTROLPLANE_BENCH_ROUNDS times per server,
alternating, and also reports the server's and the local PostgreSQL's CPU per request. The load
generator shares the machine's CPUs with the servers: the figures are a floor.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import insert, select, text, update  # noqa: E402

from bench.baoserver import KV_MOUNT, TRANSIT_MOUNT, BaoDevServer  # noqa: E402
from bench.console import bench_database, pct  # noqa: E402
from bench.httpload import (  # noqa: E402
    LoadResult,
    database_cpu,
    process_tree_cpu,
    run_load,
    start_gunicorn,
    stop,
    warm,
)
from controlplane.accounts.models import Role  # noqa: E402
from controlplane.accounts.service import Actor, create_user  # noqa: E402
from controlplane.accounts.tokens import create_token  # noqa: E402
from controlplane.backends.keys import signing_key_name, tenant_policy_hcl, tenant_policy_name  # noqa: E402
from controlplane.backends.vault import VaultKeys  # noqa: E402
from controlplane.documents.callers import SigningCaller  # noqa: E402
from controlplane.documents.issuance import MAX_BATCH, NewDocument, issue_documents  # noqa: E402
from controlplane.documents.models import Document  # noqa: E402
from controlplane.documents.signer import OrgSigner  # noqa: E402
from controlplane.migrations import upgrade_database  # noqa: E402
from controlplane.storage import Database, utcnow  # noqa: E402
from controlplane.tenancy.models import Tenant  # noqa: E402


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"CONTROLPLANE_BENCH_{name}", default))


DOCS = env_int("DOCS", 10_000)
SINGLE = env_int("SINGLE", 300)
REGISTRY = env_int("REGISTRY", 1_000_000)
SECONDS = env_int("SECONDS", 20)
ROUNDS = env_int("ROUNDS", 3)
RATE = env_int("RATE", 500)
CLIENTS = env_int("CLIENTS", 16)
THREADS = env_int("THREADS", 4)
WORKERS = env_int("WORKERS", 2)
WORKER_CLASS = os.environ.get("CONTROLPLANE_BENCH_WORKER_CLASS", "gthread")  # or sync (threads ignored)
ORG = "bench-ministry"
FILLER_ORGS = [f"bench-org-{i:02d}" for i in range(82)]
DOC_TYPES = ("birth-certificate", "degree", "driving-licence", "residence-card", "tax-clearance")
TARGET_BATCHED, TARGET_SPEEDUP, TARGET_RATIO, TARGET_P99 = 5000.0, 20.0, 0.7, 20.0
BARE_APP = '''
from flask import Flask, jsonify

app = Flask(__name__)
BODY = {"verdict": "valid", "issuer": "bench-ministry", "issuer_name": "Ministry", "doc_type": "degree",
        "title": "Degree certificate", "issued_at": "2026-01-01T00:00:00Z", "expires_at": None,
        "recipient_masked": "A**** K**** S****", "reason": None, "superseded_by": None,
        "key_id": "tenant-bench-ministry-signing#1"}


@app.get("/api/v1/verify/<token>")
def verify(token):
    return jsonify(BODY)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
'''


# --------------------------------------------------------------------------- issuance
def prepare_org(keys: VaultKeys, org: str) -> None:
    """The org's key, policy and AppRole, as tenancy apply makes them (bench/vending.py times that)."""
    name = tenant_policy_name(org)
    keys.ensure_signing_key(signing_key_name(org))
    keys.ensure_policy(name, tenant_policy_hcl(org, transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT))
    keys.ensure_approle(name, [name], token_ttl=3600, secret_id_ttl=3600, secret_id_num_uses=0)


def org_caller(db: Database, org: str) -> SigningCaller:
    """The organisation as a tenant and one of its tokens with documents:issue: who signs."""
    with db.transaction() as s:
        s.add(Tenant(slug=org, kind="ministry", name_en="Bench ministry", spec={}, spec_digest="0" * 64))
        s.flush()
        # the organisation's own admin mints it, as in production (operators cannot)
        admin = create_user(s, username=f"{org}-admin", password=secrets.token_urlsafe(24),
                            role=Role.ORG_ADMIN, org=org, initiator="bench")
        made = create_token(s, Actor(admin.id, admin.username, Role.ORG_ADMIN, org), name="bench", org=org,
                            scopes=["documents:issue"], expires_at=utcnow() + timedelta(days=30),
                            known_orgs=[org])
        return SigningCaller(org=org, token_id=made.token.id, name=made.token.prefix)


def new_documents(n: int, rng: random.Random) -> list[NewDocument]:
    return [
        NewDocument(
            doc_type=rng.choice(DOC_TYPES), title=f"Certificate {i}", recipient=f"Ahmed Karim Salih {i}",
            sha256=hashlib.sha256(f"document {i} {rng.random()}".encode()).hexdigest(),
        )
        for i in range(n)
    ]


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_issuance(
    db: Database, signer: OrgSigner, rng: random.Random
) -> tuple[list[tuple[str, int, float]], list[str]]:
    base = "https://verify.example.iq"
    caller = org_caller(db, ORG)
    issue_documents(db, signer, caller, new_documents(1, rng), base_url=base)  # warm
    batched_docs, tokens = new_documents(DOCS, rng), []

    def batched() -> None:
        for start in range(0, len(batched_docs), MAX_BATCH):
            chunk = batched_docs[start:start + MAX_BATCH]
            issued = issue_documents(db, signer, caller, chunk, base_url=base)
            tokens.extend(d.token for d in issued)

    single_docs = new_documents(SINGLE, rng)

    def single() -> None:
        for doc in single_docs:
            issue_documents(db, signer, caller, [doc], base_url=base)

    messages = [secrets.token_bytes(200) for _ in range(MAX_BATCH)]
    few = messages[: max(1, min(SINGLE, len(messages)))]
    rows = [
        ("issue, batches of 1,000", DOCS, timed(batched)),
        ("issue, one call per document", SINGLE, timed(single)),
        ("sign only, 1,000 per call", len(messages), timed(lambda: signer.sign(caller, messages))),
        ("sign only, one per call", len(few), timed(lambda: [signer.sign(caller, [m]) for m in few])),
    ]
    return rows, tokens


# --------------------------------------------------------------------------- registry
def fill_registry(db: Database, target: int, token_sample: str, rng: random.Random) -> int:
    """Unsigned filler rows up to `target` (never verified: they make the index full size)."""
    with db.transaction() as s:
        have = s.scalar(select(text("count(*)")).select_from(Document)) or 0
    missing = max(0, target - have)
    start = datetime(2021, 1, 1, tzinfo=UTC)

    def row() -> tuple[Any, ...]:
        org = rng.choice(FILLER_ORGS)
        issued = start + timedelta(seconds=rng.randrange(5 * 365 * 86400))
        revoked = rng.random() < 0.02
        return (secrets.token_hex(16), org, rng.choice(DOC_TYPES), "Certificate", "Ahmed Karim Salih",
                secrets.token_hex(32), issued, None, signing_key_name(org), 1, token_sample,
                "revoked" if revoked else "valid", "issued in error" if revoked else "",
                issued if revoked else None, None, None)

    columns = ("serial", "org", "doc_type", "title", "recipient", "sha256", "issued_at", "expires_at",
               "key_name", "key_version", "token", "status", "status_reason", "status_changed_at",
               "superseded_by", "import_ref")
    chunk = 50_000
    done = 0
    while done < missing:
        n = min(chunk, missing - done)
        rows = [row() for _ in range(n)]
        if db.engine.dialect.name == "postgresql":
            raw = db.engine.raw_connection()
            try:
                statement = f"COPY documents ({', '.join(columns)}) FROM STDIN"
                with raw.cursor() as cur, cur.copy(statement) as copy:
                    for r in rows:
                        copy.write_row(r)
                raw.commit()
            finally:
                raw.close()
        else:
            with db.transaction() as s:
                s.execute(insert(Document), [dict(zip(columns, r, strict=True)) for r in rows])
        done += n
        print(f"\r  registry: {have + done:,} / {target:,} rows", end="", flush=True)
    print()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE documents"))
    return missing


# --------------------------------------------------------------------------- main
def closed_loop_rounds(
    servers: list[tuple[str, int, subprocess.Popen[bytes]]], paths: list[str]
) -> dict[str, LoadResult]:
    """ROUNDS closed-loop runs per server, alternating which goes first: a machine that speeds up or
    slows down during the run (shared hosts do) then weighs on both sides alike."""
    merged: dict[str, LoadResult] = {}
    for round_no in range(ROUNDS):
        for label, port, server in servers if round_no % 2 == 0 else servers[::-1]:
            print(f"  {label}: closed loop, {CLIENTS} clients for {SECONDS} s "
                  f"(round {round_no + 1}/{ROUNDS})", flush=True)
            cpu_before, db_before = process_tree_cpu(server.pid), database_cpu()
            result = run_load(port, paths, seconds=SECONDS, rate=None, clients=CLIENTS)
            result.server_cpu = process_tree_cpu(server.pid) - cpu_before
            db_after = database_cpu()
            if db_after is not None and db_before is not None:
                result.database_cpu = db_after - db_before
            merged[label] = merged[label].merge(result) if label in merged else result
    return merged


def main() -> None:
    rng = random.Random(5)
    workdir = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    servers: list[subprocess.Popen[bytes] | None] = []
    database_server = os.environ.get("BENCH_DATABASE_URL")
    with BaoDevServer(workdir) as bao, bench_database(database_server, workdir) as db_url:
        db = Database(db_url)
        upgrade_database(db)
        keys = VaultKeys(addr=bao.addr, token=bao.token, transit_mount=TRANSIT_MOUNT, kv_mount=KV_MOUNT,
                         timeout=30)
        prepare_org(keys, ORG)
        signer = OrgSigner(keys, db)
        print(f"issuance: {DOCS:,} documents batched, {SINGLE:,} one by one ({db.engine.dialect.name})",
              flush=True)
        issuance, tokens = bench_issuance(db, signer, rng)
        revoked = tokens[:: 20]
        with db.transaction() as s:
            s.execute(update(Document).where(Document.token.in_(revoked))
                      .values(status="revoked", status_reason="issued in error"))
        t0 = time.perf_counter()
        added = fill_registry(db, REGISTRY, tokens[0], rng)
        print(f"  {added:,} filler rows in {time.perf_counter() - t0:.1f} s", flush=True)
        with db.transaction() as s:
            registry_rows = s.scalar(select(text("count(*)")).select_from(Document)) or 0
        db.dispose()

        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CONTROLPLANE_", "OS_", "VAULT_", "PROMETHEUS_"))}
        (workdir / "metrics").mkdir()
        verify_env = {
            **base_env,
            "CONTROLPLANE_ROLE": "verification",
            "CONTROLPLANE_INSTANCE_PATH": str(workdir / "instance"),
            "CONTROLPLANE_DATABASE_URL": db_url,
            "CONTROLPLANE_LOG_LEVEL": "WARNING",
            "CONTROLPLANE_VERIFY_RATE_PER_MINUTE": "0",  # one client address sends everything
            "VAULT_ADDR": bao.addr,
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
        }
        (workdir / "bench_bare_app.py").write_text(BARE_APP, encoding="utf-8")
        try:
            served = {"workers": WORKERS, "worker_class": WORKER_CLASS, "threads": THREADS}
            verify_proc, verify_port = start_gunicorn("controlplane.app:create_app()", verify_env, REPO,
                                                      workdir / "verify.log", **served)
            servers.append(verify_proc)
            bare_proc, bare_port = start_gunicorn("bench_bare_app:app", base_env, workdir,
                                                  workdir / "bare.log", **served)
            servers.append(bare_proc)
            paths = [f"/api/v1/verify/{t}" for t in tokens]
            rng.shuffle(paths)
            verdicts = set()
            for path in paths[:50]:
                conn = http.client.HTTPConnection("127.0.0.1", verify_port, timeout=10)
                conn.request("GET", path)
                verdicts.add(json.loads(conn.getresponse().read())["verdict"])
                conn.close()
            if not verdicts <= {"valid", "revoked"}:
                raise SystemExit(f"unexpected verdicts from the verification app: {verdicts}")
            rows: list[tuple[str, str, LoadResult]] = []
            clients_open = max(16, RATE // 25)
            for label, port in (("bare Flask JSON", bare_port), ("verify API (registry)", verify_port)):
                warm(port, paths)
                print(f"  {label}: open loop {RATE} req/s for {SECONDS} s", flush=True)
                rows.append((label, f"open {RATE}/s", run_load(port, paths, seconds=SECONDS, rate=RATE,
                                                                clients=clients_open)))
            closed = closed_loop_rounds([("bare Flask JSON", bare_port, bare_proc),
                                         ("verify API (registry)", verify_port, verify_proc)], paths)
            rows.extend((label, f"closed {CLIENTS} cl", result) for label, result in closed.items())
        finally:
            for proc in servers:
                stop(proc)

    print(f"\nissuance: one org, OpenBao dev server transit ed25519, {db.engine.dialect.name} registry")
    print(f"{'mode':34} {'docs':>7} {'seconds':>8} {'docs/s':>9}")
    rates = {}
    for label, n, secs in issuance:
        rates[label] = n / secs
        print(f"{label:34} {n:7,d} {secs:8.2f} {n / secs:9.0f}")
    batched, single = rates["issue, batches of 1,000"], rates["issue, one call per document"]
    print(f"batched issuance {batched:,.0f} docs/s (target >= {TARGET_BATCHED:,.0f}: "
          f"{'ok' if batched >= TARGET_BATCHED else 'MISSES'}); {batched / single:.1f}x single-call "
          f"(target >= {TARGET_SPEEDUP:.0f}x: {'ok' if batched / single >= TARGET_SPEEDUP else 'MISSES'})")

    print(f"\nverification over HTTP: registry of {registry_rows:,} documents ({len(tokens):,} signed and "
          f"verified, 5 % of them revoked), gunicorn {WORKERS} workers x {THREADS} threads ({WORKER_CLASS}), "
          f"verification role, no rate limit")
    print(f"the load generator runs in this process on the same {os.cpu_count()} CPUs as both servers: "
          "it competes with them, so throughputs are a floor")
    print(f"{'endpoint':24} {'load':>14} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'p99 ms':>7}  statuses")
    for label, load, r in rows:
        codes = ",".join(f"{c}:{n}" for c, n in sorted(r.statuses.items()))
        print(f"{label:24} {load:>14} {r.requests:9,d} {r.rps:8.0f} {pct(r.latencies_ms, 0.5):7.1f} "
              f"{pct(r.latencies_ms, 0.95):7.1f} {pct(r.latencies_ms, 0.99):7.1f}  {codes}")
    for label, _load, r in rows[2:]:
        if r.server_cpu is not None:
            database = (f", database {r.database_cpu / r.requests * 1e6:.0f} us"
                        if r.database_cpu is not None else "")
            print(f"{label}: CPU per request (closed loop): "
                  f"gunicorn {r.server_cpu / r.requests * 1e6:.0f} us{database}")
    bare_max, verify_max = rows[2][2].rps, rows[3][2].rps
    p99 = pct(rows[1][2].latencies_ms, 0.99)
    ratio = verify_max / bare_max
    per_round = [v.rps / b.rps for b, v in zip(rows[2][2].rounds, rows[3][2].rounds, strict=True)]
    print(f"closed loop in {ROUNDS} alternating rounds of {SECONDS} s each; verify/bare per round: "
          + ", ".join(f"{x:.2f}" for x in per_round))
    print(f"max throughput verify/bare: {ratio:.2f} (target >= {TARGET_RATIO}: "
          f"{'ok' if ratio >= TARGET_RATIO else 'MISSES'}); verify p99 at {RATE} req/s: {p99:.1f} ms "
          f"(target < {TARGET_P99:.0f} ms: {'ok' if p99 < TARGET_P99 else 'MISSES'})")
    print("load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
