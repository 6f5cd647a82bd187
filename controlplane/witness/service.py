"""What the witness checks before it co-signs (C2SP tlog-witness add-checkpoint) and what it answers.

Order of checks, each with the spec's status: a malformed body (400), an origin it does not serve
(404), no valid signature by a key it trusts for that origin (403), an old size above the new size
(400), an old size that is not the size it last co-signed (409, body = its size, so a log that
lost or cut its history learns what it must prove from), the same size with another root (409: a
fork), a consistency proof that does not take its recorded root to the new one (422). Only then
does it sign, persist the new record, and answer with a cosignature/v1 line.

A refused request that carries a valid log signature (a fork, a failed proof, a wrong old size) is
kept in `evidence/` beside the state file, as the spec allows: two checkpoints the log signed that
cannot both be true are proof of its misbehaviour, whatever its operators say later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from controlplane.tlog import merkle
from controlplane.tlog.note import (
    SIG_COSIGNATURE_V1,
    Note,
    NoteError,
    Verifier,
    cosign_line,
    parse_checkpoint,
    parse_note,
    verified_by,
)
from controlplane.tlog.protocol import SIZE_CONTENT_TYPE, parse_request
from controlplane.witness.config import WitnessConfig
from controlplane.witness.state import Latest, WitnessState

log = logging.getLogger(__name__)
TEXT = "text/plain; charset=utf-8"


class Signer(Protocol):
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = TEXT


class Witness:
    def __init__(
        self,
        config: WitnessConfig,
        signer: Signer,
        state: WitnessState,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.signer, self.state, self.clock = config, signer, state, clock

    def verifier(self) -> Verifier:
        """This witness's cosignature key, as logs and auditors pin it (`vkey()`)."""
        return Verifier(self.config.name, SIG_COSIGNATURE_V1, self.signer.public_key())

    def latest(self, origin: str) -> Reply:
        record = self.state.get(origin)
        if record is None:
            return Reply(404, f"this witness has co-signed no checkpoint of {origin!r}\n")
        return Reply(200, record.note)

    def add_checkpoint(self, body: bytes) -> Reply:
        try:
            request = parse_request(body)
            note = parse_note(request.note)
            checkpoint = parse_checkpoint(note.text)
        except NoteError as exc:
            return Reply(400, f"malformed add-checkpoint request: {exc}\n")
        origin = checkpoint.origin
        trusted = self.config.log_verifiers(origin)
        if trusted is None:
            return Reply(404, f"this witness does not serve the log {origin!r}\n")
        try:
            signed = verified_by(note, trusted)
        except NoteError as exc:
            return Reply(403, f"{exc}\n")
        if not signed:
            return Reply(403, f"the checkpoint carries no signature by a key trusted for {origin!r}\n")
        if request.old_size > checkpoint.size:
            return Reply(400, f"old size {request.old_size} is above the checkpoint size {checkpoint.size}\n")
        if request.old_size == 0 and request.proof:
            return Reply(400, "the consistency proof must be empty when the old size is 0\n")
        with self.state.locked() as records:
            latest = records.get(origin)
            known = latest.size if latest is not None else 0
            if request.old_size != known:
                log.warning("%s: refused size %d from old size %d; witnessed size is %d",
                            origin, checkpoint.size, request.old_size, known)
                self._keep_evidence(body, checkpoint.size, f"old size {request.old_size}, witnessed {known}")
                return Reply(409, f"{known}\n", SIZE_CONTENT_TYPE)
            if latest is not None:
                refusal = self._inconsistency(latest, request.old_size, checkpoint.size,
                                              checkpoint.root_hash, request.proof)
                if refusal is not None:
                    log.warning("%s: refused size %d: %s", origin, checkpoint.size, refusal.body.strip())
                    self._keep_evidence(body, checkpoint.size, refusal.body.strip())
                    return refusal
            cosignature = cosign_line(
                self.config.name, self.signer.public_key(), int(self.clock()), note.text, self.signer.sign
            )
            kept = Note(note.text, (*(sig for _, sig in signed), cosignature))
            records[origin] = Latest(checkpoint.size, checkpoint.root_hash, kept.signed())
            self.state.write(records)
        log.info("%s: co-signed tree size %d", origin, checkpoint.size)
        return Reply(200, cosignature.line())

    def _keep_evidence(self, body: bytes, size: int, reason: str) -> None:
        folder = self.state.path.parent / "evidence"
        folder.mkdir(mode=0o700, exist_ok=True)
        name = f"{int(self.clock() * 1000)}-{size}.txt"
        (folder / name).write_bytes(f"# refused: {reason}\n".encode() + body)

    @staticmethod
    def _inconsistency(
        latest: Latest, old: int, size: int, root: bytes, proof: list[bytes]
    ) -> Reply | None:
        if old == size:
            if root != latest.root_hash:
                return Reply(409, f"fork: tree size {size} was co-signed with another root hash\n")
            return None  # the same checkpoint again: co-signed again
        if not merkle.verify_consistency(old, size, latest.root_hash, root, proof):
            return Reply(
                422,
                f"the consistency proof does not show tree size {size} extending the co-signed "
                f"tree size {old}: the log's history differs from what this witness signed\n",
            )
        return None
