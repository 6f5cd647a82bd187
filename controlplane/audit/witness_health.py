"""For doctor and /readyz: does the witness answer, and has it co-signed the latest checkpoint?"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

from sqlalchemy import select

from controlplane.audit.models import AuditCheckpoint
from controlplane.storage import Database, as_utc, utcnow

# A checkpoint younger than this may still be on its way to the witness.
IN_FLIGHT = timedelta(seconds=60)


def witness_health(database: Database, url: str) -> tuple[bool, str]:
    try:
        request = urllib.request.Request(url.rstrip("/") + "/readyz")  # noqa: S310 - operator's setting
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
            if response.status != 200:
                return False, f"the witness at {url} is not ready (HTTP {response.status})"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"the witness at {url} does not answer: {exc}"
    with database.transaction() as s:
        cp = s.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1))
    if cp is None:
        return True, f"witness at {url} ready; no checkpoint signed yet"
    if cp.cosignature is not None:
        return True, f"witness at {url} co-signed the latest checkpoint (tree size {cp.tree_size})"
    if utcnow() - as_utc(cp.signed_at) < IN_FLIGHT:
        return True, f"witness at {url} ready; tree size {cp.tree_size} is being co-signed"
    return False, f"the witness at {url} has not co-signed the latest checkpoint (tree size {cp.tree_size})"
