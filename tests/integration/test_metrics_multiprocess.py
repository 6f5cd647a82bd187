"""Metrics in multiprocess mode (as gunicorn serves them): forked workers count apart, and add up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runs in a fresh interpreter: multiprocess mode is chosen when prometheus_client is first imported.
FORKING_WORKERS = r"""
import json, os, sys
from controlplane import metrics

child = metrics.HTTP_REQUESTS.labels("api_documents.verify", "GET", "2xx")
histogram = metrics.HTTP_LATENCY.labels("api_documents.verify")
child.inc(5)  # the parent, before any fork (as a gunicorn master with --preload would)
pids = []
for n in (1, 2):
    pid = os.fork()
    if pid == 0:  # a worker: its own pid, so its own files
        for _ in range(100 * n):
            child.inc()
            histogram.observe(0.002)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
text = metrics.render_latest()[0].decode()
def sample(name):
    line = next(l for l in text.splitlines() if l.startswith(name) and 'api_documents.verify' in l)
    return float(line.rsplit(" ", 1)[1])
print(json.dumps({"pids": [os.getpid(), *pids],
                  "requests": sample("controlplane_http_requests_total{"),
                  "latency_count": sample("controlplane_http_request_duration_seconds_count{")}))
"""


def test_forked_workers_write_their_own_files_and_the_scrape_adds_them_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", FORKING_WORKERS], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # Every increment survives: none lost to two processes writing one file.
    assert result["requests"] == 5 + 100 + 200
    assert result["latency_count"] == 300
    files = {path.name for path in tmp_path.iterdir()}
    for pid in result["pids"]:
        assert f"counter_{pid}.db" in files  # the parent and each worker under its own pid
    assert {f"histogram_{pid}.db" for pid in result["pids"][1:]} <= files
