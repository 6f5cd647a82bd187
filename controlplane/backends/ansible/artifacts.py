"""Kept artifacts: a finished run's artifacts moved to runs_dir, secrets scrubbed, oldest pruned."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

# The package's name, as before it was split into modules, so log lines and filters keep theirs.
logger = logging.getLogger(__package__)


def keep_artifacts(
    artifacts: Path, *, runs_dir: Path, ident: str, keep: int, scrub: Callable[[str], str]
) -> str:
    """Move the run's artifacts to runs_dir (secrets removed); keep the newest `keep` runs.

    Artifacts are for display: failing to keep them is logged, never the run's failure.
    """
    if not keep or not artifacts.is_dir():
        return ""
    try:
        return _move_artifacts(artifacts, runs_dir=runs_dir, ident=ident, keep=keep, scrub=scrub)
    except OSError:
        logger.warning("could not keep the artifacts of run %s", ident, exc_info=True)
        return ""


def _move_artifacts(
    artifacts: Path, *, runs_dir: Path, ident: str, keep: int, scrub: Callable[[str], str]
) -> str:
    runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = runs_dir / ident
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(artifacts), str(target))
    for path in target.rglob("*"):
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8", errors="replace")
            cleaned = scrub(text)
            if cleaned != text:
                path.write_text(cleaned, encoding="utf-8")
    os.utime(target)
    runs = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep)]:
        shutil.rmtree(old, ignore_errors=True)
    return str(target)
