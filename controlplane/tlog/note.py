"""C2SP signed notes, checkpoints and cosignatures: parse, format, key ids and Ed25519 checks.

- signed-note: text ending in a newline, a blank line, then lines `— <key name> base64(key id ||
  signature)`; key id = SHA-256(name || 0x0A || type || public key)[:4]; type 0x01 = Ed25519 over
  the text. A verifier key ("vkey") is `<name>+<hex key id>+base64(type || public key)`.
- tlog-checkpoint: the text is origin, decimal tree size (no leading zeroes), base64 root hash,
  then optional extension lines.
- tlog-cosignature (cosignature/v1, type 0x04): the signature is an 8-byte big-endian POSIX
  timestamp followed by an Ed25519 signature over "cosignature/v1\\ntime <ts>\\n" + checkpoint text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
EM_DASH = "\u2014"
COSIGNATURE_HEADER = "cosignature/v1"
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_SIZE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A note, checkpoint, key or signature that does not follow the C2SP format, or does not verify."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise NoteError(f"{what} is not base64") from None


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# ------------------------------------------------------------------------------ checkpoints
@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root_hash), *self.extensions]
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise NoteError("a checkpoint's text ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a tree size and a root hash line")
    origin, size, root, *extensions = lines
    if not origin:
        raise NoteError("the checkpoint's origin line is empty")
    if not _SIZE.fullmatch(size):
        raise NoteError(f"tree size {size!r} is not a decimal number without leading zeroes")
    root_hash = unb64(root, "the root hash")
    if len(root_hash) != 32:
        raise NoteError(f"the root hash has {len(root_hash)} bytes, not 32")
    if any(not line for line in extensions):
        raise NoteError("a checkpoint's extension lines are not empty")
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


# ---------------------------------------------------------------------------- keys (vkeys)
@dataclass(frozen=True)
class Verifier:
    """A key that verifies note signatures of one type under one name."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.sig_type]) + self.public_key)}"

    def verify(self, text: str, signature: bytes) -> bool:
        """`signature` without its 4-byte key id."""
        if self.sig_type == SIG_ED25519:
            return ed25519_verify(self.public_key, signature, text.encode())
        if self.sig_type == SIG_COSIGNATURE_V1 and len(signature) == 72:
            timestamp = int.from_bytes(signature[:8], "big")
            message = cosignature_message(timestamp, text)
            return timestamp < 2**63 and ed25519_verify(self.public_key, signature[8:], message)
        return False


def ed25519_verifier(name: str, public_key: bytes) -> Verifier:
    """A log's checkpoint key (signed-note type 0x01)."""
    return Verifier(check_key_name(name), SIG_ED25519, public_key)


def cosigner_verifier(name: str, public_key: bytes) -> Verifier:
    """A witness's key (tlog-cosignature type 0x04)."""
    return Verifier(check_key_name(name), SIG_COSIGNATURE_V1, public_key)


def parse_vkey(vkey: str) -> Verifier:
    parts = vkey.strip().split("+", 2)  # the base64 key may itself contain '+'

    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<key id>+<base64 key>")
    name, hex_id, encoded = parts
    check_key_name(name)
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise NoteError("a verifier key's id is 8 lowercase hex digits")
    raw = unb64(encoded, "the verifier key")
    if len(raw) != 33 or raw[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
        raise NoteError("only Ed25519 (0x01) and cosignature/v1 (0x04) verifier keys are supported")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id.hex() != hex_id:
        raise NoteError(f"verifier key {name}: the key id does not match the key")
    return verifier


# --------------------------------------------------------------------------------- notes
@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # without the key id

    def line(self) -> str:
        return f"{EM_DASH} {self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]

    def signed(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def _check_chars(text: str) -> None:
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note contains a control character other than newline")


def parse_signature_lines(block: str) -> tuple[NoteSignature, ...]:
    """Signature lines, each ending in a newline (a witness's answer, or the end of a note)."""
    if not block.endswith("\n"):
        raise NoteError("signature lines end with a newline")
    _check_chars(block)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    out = []
    for line in lines:
        prefix, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if prefix != EM_DASH or not encoded or " " in encoded:
            raise NoteError(f"malformed signature line {line[:80]!r}")
        raw = unb64(encoded, f"the signature by {check_key_name(name)}")
        if len(raw) < 5:
            raise NoteError(f"the signature by {name} is too short")
        out.append(NoteSignature(name, raw[:4], raw[4:]))
    return tuple(out)


def parse_note(data: bytes | str) -> Note:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise NoteError("a note is UTF-8") from None
    _check_chars(text)
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has a blank line between its text and its signatures")
    return Note(text[: split + 1], parse_signature_lines(text[split + 2 :]))


def verified_by(note: Note, verifiers: Iterable[Verifier]) -> list[tuple[Verifier, NoteSignature]]:
    """The note's signatures by known keys, each checked; unknown keys are ignored (as the spec
    says). A signature by a known key that fails is an error, not a skip."""
    known = {(v.name, v.key_id): v for v in verifiers}
    out = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(note.text, sig.signature):
            raise NoteError(f"the signature by {sig.name} ({sig.key_id.hex()}) does not verify")
        out.append((verifier, sig))
    return out


def sign_note_line(name: str, public_key: bytes, text: str, sign: Callable[[bytes], bytes]) -> NoteSignature:
    """An Ed25519 note signature; `sign` makes the raw signature (a key held elsewhere, e.g. Vault)."""
    return NoteSignature(check_key_name(name), key_id(name, SIG_ED25519, public_key), sign(text.encode()))


# --------------------------------------------------------------------------- cosignatures
def cosignature_message(timestamp: int, checkpoint_text: str) -> bytes:
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign_line(
    name: str, public_key: bytes, timestamp: int, checkpoint_text: str, sign: Callable[[bytes], bytes]
) -> NoteSignature:
    signature = sign(cosignature_message(timestamp, checkpoint_text))
    return NoteSignature(
        check_key_name(name),
        key_id(name, SIG_COSIGNATURE_V1, public_key),
        timestamp.to_bytes(8, "big") + signature,
    )


def cosignature_timestamp(signature: NoteSignature) -> int:
    return int.from_bytes(signature.signature[:8], "big")
