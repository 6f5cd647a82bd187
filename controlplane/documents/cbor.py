"""The CBOR of our tokens and claims, written and read in deterministic form only (RFC 8949 §4.2.1)."""

from __future__ import annotations

from controlplane.documents.errors import MalformedToken

# Additional information 24-27: the argument follows in 1, 2, 4 or 8 bytes.
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


def head(major: int, n: int) -> bytes:
    """A head of that major type with the shortest argument for `n` (RFC 8949 §3, §4.2.1)."""
    top = major << 5
    if n < 24:
        return bytes((top | n,))
    if n < 0x100:
        return bytes((top | 24, n))
    if n < 0x10000:
        return bytes((top | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((top | 26,)) + n.to_bytes(4, "big")
    return bytes((top | 27,)) + n.to_bytes(8, "big")


def bstr(data: bytes) -> bytes:
    return head(2, len(data)) + data


def tstr(text: str) -> bytes:
    data = text.encode("utf-8")
    return head(3, len(data)) + data


class Reader:
    """Reads items in the one order and encoding a writer of ours gives them: shortest heads,
    definite lengths, nothing after the end. Any deviation is MalformedToken, its message
    starting with `what` ("token", "claims"). Reading this way is decoding and checking that a
    re-encoding gives the same bytes, in one pass and without a general decoder."""

    __slots__ = ("at", "data", "what")

    def __init__(self, data: bytes, what: str, *, at: int = 0) -> None:
        self.data, self.what, self.at = data, what, at

    def head(self, major: int) -> int:
        """The argument of a head of that major type, given in its shortest form."""
        data, at = self.data, self.at
        if at >= len(data) or data[at] >> 5 != major:
            raise MalformedToken(f"{self.what}: not in deterministic encoding (unexpected item)")
        info = data[at] & 0x1F
        if info < 24:
            self.at = at + 1
            return info
        size = _ARGUMENT_BYTES.get(info)
        if size is None or at + 1 + size > len(data):
            raise MalformedToken(f"{self.what}: not in deterministic encoding (length)")
        value = int.from_bytes(data[at + 1:at + 1 + size], "big")
        if value < (24 if size == 1 else 1 << (4 * size)):  # a shorter head would hold it
            raise MalformedToken(f"{self.what}: not in deterministic encoding (long head)")
        self.at = at + 1 + size
        return value

    def expect(self, encoded: bytes, meaning: str) -> None:
        """The next bytes are exactly `encoded` (a key, an empty map); `meaning` says what it is."""
        if not self.data.startswith(encoded, self.at):
            raise MalformedToken(f"{self.what}: not in deterministic encoding ({meaning})")
        self.at += len(encoded)

    def raw(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise MalformedToken(f"{self.what}: truncated")
        self.at += size
        return self.data[self.at - size:self.at]

    def byte_string(self) -> bytes:
        return self.raw(self.head(2))

    def text(self) -> str:
        try:
            return self.raw(self.head(3)).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedToken(f"{self.what}: text is not UTF-8") from None

    def end(self) -> None:
        if self.at != len(self.data):
            raise MalformedToken(f"{self.what}: bytes after the end")
