"""A checkpoint an auditor pinned (`--since SIZE:ROOTHEX`, or the witness's latest) and what a log
must satisfy to extend it: at least that size, and the same root at that size."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controlplane.errors import InvalidInput
from controlplane.tlog.note import NoteError, Verifier, parse_checkpoint, parse_note, verified_by
from controlplane.tlog.protocol import WitnessUnreachable, fetch_latest

_SINCE = re.compile(r"(0|[1-9][0-9]*):([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Pinned:
    size: int
    root_hash: bytes
    source: str

    def __str__(self) -> str:
        return f"{self.size}:{self.root_hash.hex()} ({self.source})"


def parse_since(text: str) -> Pinned:
    match = _SINCE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"--since {text!r}: expected SIZE:ROOT (decimal size, 64 hex digits of root hash)")
    return Pinned(int(match.group(1)), bytes.fromhex(match.group(2)), "--since")


def pinned_from_witness(
    url: str, origin: str, witnesses: Sequence[Verifier], *, timeout: float = 10.0
) -> Pinned:
    """The witness's latest co-signed checkpoint of `origin`, trusted only if its cosignature
    verifies under a pinned witness key (the log's own signature is not what is relied on here)."""
    if not witnesses:
        raise InvalidInput("no pinned witness key: set witness_vkey or pass --witness-key")
    try:
        answer = fetch_latest(url, origin, timeout=timeout)
    except WitnessUnreachable as exc:
        raise InvalidInput(f"cannot reach the witness: {exc}") from None
    if answer.status != 200:
        raise InvalidInput(f"the witness at {url} answered {answer.status}: {answer.body.strip()[:200]}")
    try:
        note = parse_note(answer.body)
        checkpoint = parse_checkpoint(note.text)
        if not verified_by(note, witnesses):
            raise NoteError("no cosignature by the pinned witness key")
    except NoteError as exc:
        raise InvalidInput(f"the witness's latest checkpoint does not verify: {exc}") from None
    if checkpoint.origin != origin:
        raise InvalidInput(f"the witness answered for origin {checkpoint.origin!r}, not {origin!r}")
    return Pinned(checkpoint.size, checkpoint.root_hash, f"the witness at {url}")


def pinned_fault(pinned: Pinned, size: int, root_at: Callable[[int], bytes]) -> tuple[str, str] | None:
    """(kind, message) when a log of `size` leaves, with `root_at(n)` its root at n, does not extend
    the pinned checkpoint: truncated (shorter), fork (same size, other root) or regrown (longer,
    but another history below the pinned size)."""
    if size < pinned.size:
        return "truncated", (
            f"the log has {size} leaves but the pinned checkpoint {pinned} has {pinned.size}: "
            "leaves were removed"
        )
    if pinned.size == 0 or root_at(pinned.size) == pinned.root_hash:
        return None
    if size == pinned.size:
        return "fork", f"the log's root at size {size} differs from the pinned checkpoint {pinned}"
    return "regrown", (
        f"the log has grown to {size} leaves, but its first {pinned.size} are not the ones the "
        f"pinned checkpoint {pinned} covers: history was rewritten"
    )
