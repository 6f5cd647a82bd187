"""HTTP load for the benches: gunicorn servers, keep-alive clients, open and closed loops with latencies."""

from __future__ import annotations

import http.client
import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    app: str, env: dict[str, str], cwd: Path, log: Path, *, workers: int, worker_class: str, threads: int
) -> tuple[subprocess.Popen[bytes], int]:
    """Serve `app` on a free loopback port; both sides of a comparison get the same settings."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--worker-class", worker_class, "--threads", str(threads), "--log-level", "warning",
         "--no-control-socket", app],
        env=env, cwd=str(cwd), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{app} exited; see {log}:\n" + log.read_text(errors="replace")[-3000:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"{app} did not answer /healthz within 60 s; see {log}")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------- load
class Connection:
    """One keep-alive connection (one per load thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("GET", path)
                response = self.conn.getresponse()
                response.read()
                return response.status
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by gunicorn's master and its workers (Linux /proc):
    unlike req/s, CPU per request barely moves when other jobs load the machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def database_cpu() -> float | None:
    """CPU seconds used so far by every local PostgreSQL process (None when there is none, as with
    SQLite): the registry reads cost the server CPU on the same cores as the load."""
    total, found = 0.0, False
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if not comm.read_text().startswith("postgres"):
                continue
            fields = (comm.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found = True
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total if found else None


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    server_cpu: float | None = None  # seconds of server CPU during the run (closed loop only)
    database_cpu: float | None = None  # seconds of local PostgreSQL CPU during the run
    rounds: list[LoadResult] = field(default_factory=list)  # the runs merged into this one

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def merge(self, other: LoadResult) -> LoadResult:
        """This run and another as one: requests and seconds summed, so rps is time-weighted."""
        def add(a: float | None, b: float | None) -> float | None:
            return a + b if a is not None and b is not None else None

        statuses = dict(self.statuses)
        for code, n in other.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
        return LoadResult(self.requests + other.requests, self.seconds + other.seconds,
                          self.latencies_ms + other.latencies_ms, statuses,
                          add(self.server_cpu, other.server_cpu), add(self.database_cpu, other.database_cpu),
                          (self.rounds or [self]) + (other.rounds or [other]))


def run_load(
    port: int, paths: Sequence[str], *, seconds: float, rate: float | None, clients: int
) -> LoadResult:
    """Open loop at `rate` req/s (latency from the scheduled start) or, with rate None, closed loop."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter() + 0.2
    deadline = started + seconds
    total = int(rate * seconds) if rate else None

    def worker() -> None:
        conn, mine, codes = Connection(port), [], {}
        while True:
            i = next(counter)
            if rate is not None:
                if total is not None and i >= total:
                    break
                scheduled = started + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            else:
                scheduled = time.perf_counter()
                if scheduled >= deadline:
                    break
            status = conn.get(paths[i % len(paths)])
            mine.append((time.perf_counter() - scheduled) * 1000)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(len(latencies), time.perf_counter() - started, latencies, statuses)


def warm(port: int, paths: Sequence[str]) -> None:
    run_load(port, paths[:400], seconds=1.0, rate=None, clients=8)
