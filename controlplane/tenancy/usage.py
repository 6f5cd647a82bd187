"""Quota and usage of a project for display: three services read in parallel, cached briefly."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from controlplane.backends.cloud import CloudBackend, ComputeQuotas, NetworkQuotas, VolumeQuotas

# Pages show usage; a few seconds old is fine there, and it keeps a busy console from becoming
# Nova's, Neutron's and Cinder's heaviest client. Decisions (planner, request checks) read fresh.
DISPLAY_MAX_AGE = 10.0
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="usage")
_cache: dict[tuple[int, str], tuple[float, ProjectQuotas]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ProjectQuotas:
    compute: ComputeQuotas
    network: NetworkQuotas
    volume: VolumeQuotas


def read_project_quotas(cloud: CloudBackend, project_id: str, *, max_age: float = 0.0) -> ProjectQuotas:
    """The project's quotas with usage; errors are the port's (TemporaryError, PermanentError)."""
    key = (id(cloud), project_id)
    now = time.monotonic()
    if max_age > 0:
        with _lock:
            hit = _cache.get(key)
        if hit is not None and now - hit[0] <= max_age:
            return hit[1]
    compute = _pool.submit(cloud.get_compute_quotas, project_id)
    network = _pool.submit(cloud.get_network_quotas, project_id)
    volume = _pool.submit(cloud.get_volume_quotas, project_id)
    quotas = ProjectQuotas(compute.result(), network.result(), volume.result())
    with _lock:
        _cache[key] = (now, quotas)
        if len(_cache) > 4096:  # bounded: drop the oldest half
            for old in sorted(_cache, key=lambda k: _cache[k][0])[:2048]:
                del _cache[old]
    return quotas
