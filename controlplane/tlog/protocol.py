"""The C2SP tlog-witness HTTP protocol, both sides: the add-checkpoint body and a small client.

Request body: `old <size>`, zero to 63 base64 consistency-proof lines, a blank line, the signed
checkpoint note. Answers: 200 with cosignature lines; 409 with `text/x.tlog.size` = the witness's
size; 422 bad proof; 403 no trusted log signature; 404 unknown origin; 400 malformed. Besides the
spec, our witness serves `GET <prefix>/latest?origin=O` (its latest cosigned checkpoint as a
signed note), which `audit check --since-witness` reads. Plain urllib: no HTTP library needed.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.tlog.note import NoteError, b64, unb64

SIZE_CONTENT_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_BODY_BYTES = 64 * 1024
_OLD = re.compile(r"old (0|[1-9][0-9]*)")


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: list[bytes]
    note: str  # the signed checkpoint note


def request_body(old_size: int, proof: Sequence[bytes], signed_note: str) -> bytes:
    lines = [f"old {old_size}", *(b64(h) for h in proof), ""]
    return ("".join(f"{line}\n" for line in lines) + signed_note).encode()


def parse_request(body: bytes) -> AddCheckpoint:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise NoteError("the request has no blank line before the checkpoint")
    lines = head.split("\n")
    old = _OLD.fullmatch(lines[0])
    if old is None:
        raise NoteError("the first line is `old <size>` (decimal, no leading zeroes)")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise NoteError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = [unb64(line, "a consistency proof line") for line in lines[1:]]
    if any(len(h) != 32 for h in proof):
        raise NoteError("a consistency proof hash is not 32 bytes")
    return AddCheckpoint(int(old.group(1)), proof, note)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str

    @property
    def conflict_size(self) -> int | None:
        """The witness's size in a 409 answer, when it gave one."""
        if self.status != 409 or not self.content_type.startswith(SIZE_CONTENT_TYPE):
            return None
        text = self.body.strip()
        return int(text) if text.isdigit() else None


class WitnessUnreachable(Exception):
    pass


def _call(request: urllib.request.Request, timeout: float) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URL
            data = response.read(MAX_BODY_BYTES)
            return Answer(response.status, response.headers.get("Content-Type", ""), data.decode())
    except urllib.error.HTTPError as exc:
        data = exc.read(MAX_BODY_BYTES)
        return Answer(exc.code, exc.headers.get("Content-Type", ""), data.decode(errors="replace"))
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        raise WitnessUnreachable(f"{request.full_url}: {exc}") from None


def _checked_url(url: str) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise WitnessUnreachable(f"witness URL {url!r} is not http(s)")
    return url.rstrip("/")


def add_checkpoint(
    url: str, old_size: int, proof: Sequence[bytes], signed_note: str, *, timeout: float = 10.0
) -> Answer:
    request = urllib.request.Request(  # noqa: S310 - scheme checked
        _checked_url(url) + "/add-checkpoint",
        data=request_body(old_size, proof, signed_note),
        method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    return _call(request, timeout)


def fetch_latest(url: str, origin: str, *, timeout: float = 10.0) -> Answer:
    query = urllib.parse.urlencode({"origin": origin})
    request = urllib.request.Request(_checked_url(url) + f"/latest?{query}")  # noqa: S310
    return _call(request, timeout)
