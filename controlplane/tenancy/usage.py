"""Quota and usage of a project for display: three services read in parallel, cached briefly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from controlplane.backends.cloud import CloudBackend, ComputeQuotas, NetworkQuotas, VolumeQuotas

# Pages show usage; a few seconds old is fine there, and it keeps a busy console from becoming
# Nova's, Neutron's and Cinder's heaviest client. Decisions (planner, request checks) read fresh.
DISPLAY_MAX_AGE = 10.0
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="usage")
_cache: dict[tuple[int, str], tuple[float, ProjectQuotas]] = {}
_inflight: dict[tuple[int, str], Future[ProjectQuotas]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ProjectQuotas:
    compute: ComputeQuotas
    network: NetworkQuotas
    volume: VolumeQuotas


def read_project_quotas(cloud: CloudBackend, project_id: str, *, max_age: float = 0.0) -> ProjectQuotas:
    """The project's quotas with usage; errors are the port's (TemporaryError, PermanentError).
    Concurrent readers of the same project share one read (no stampede when the cache expires)."""
    key = (id(cloud), project_id)
    with _lock:
        hit = _cache.get(key)
        if max_age > 0 and hit is not None and time.monotonic() - hit[0] <= max_age:
            return hit[1]
        pending = _inflight.get(key)
        if pending is None:
            pending = _inflight[key] = _pool.submit(_read, cloud, project_id)
    try:
        quotas = pending.result()
    finally:
        with _lock:
            if _inflight.get(key) is pending:
                del _inflight[key]
    with _lock:
        _cache[key] = (time.monotonic(), quotas)
        if len(_cache) > 4096:  # bounded: drop the oldest half
            for old in sorted(_cache, key=lambda k: _cache[k][0])[:2048]:
                del _cache[old]
    return quotas


def _read(cloud: CloudBackend, project_id: str) -> ProjectQuotas:
    network = _pool.submit(cloud.get_network_quotas, project_id)
    volume = _pool.submit(cloud.get_volume_quotas, project_id)
    compute = cloud.get_compute_quotas(project_id)
    return ProjectQuotas(compute, network.result(), volume.result())
