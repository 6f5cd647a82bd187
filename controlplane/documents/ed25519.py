"""Ed25519 signature checks by libsodium, called without letting go of the GIL (PyNaCl's as fallback)."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from collections.abc import Callable

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

log = logging.getLogger(__name__)

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def verify(signature: bytes, message: bytes, public_key: bytes) -> bool:
    """Whether `signature` is an Ed25519 signature of `message` by `public_key`; never raises."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False  # also what keeps the C call below from reading past either buffer
    if _VERIFY_DETACHED is not None:
        return _VERIFY_DETACHED(signature, message, len(message), public_key) == 0
    try:
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, ValueError):  # nacl's ValueError subclasses the builtin one
        return False
    return True


def holds_gil() -> bool:
    """Whether checks go through the GIL-holding call (tests and `doctor`-style reports)."""
    return _VERIFY_DETACHED is not None


def _load_verify_detached() -> Callable[[bytes, bytes, int, bytes], int] | None:
    """libsodium's crypto_sign_ed25519_verify_detached through ctypes.PyDLL, which keeps the GIL.

    Why: cffi (PyNaCl's binding) lets go of the GIL around every call. For a check of about
    45 us on a worker whose threads all want the CPU, that is two thread switches per
    verification, and they cost more than any overlap gains: holding the GIL measured about
    30 us less server CPU per public verification under load (bench/documents, 2 cores). The
    function is libsodium's own, in the very library PyNaCl loaded (its wheels link libsodium in
    and export it), so the check is the same one crypto_sign_open makes. A build that does not
    export it makes this None, and verify() takes PyNaCl's call instead."""
    spec = importlib.util.find_spec("nacl._sodium")
    if spec is None or not spec.origin:
        return None
    try:
        function = ctypes.PyDLL(spec.origin).crypto_sign_ed25519_verify_detached
    except (OSError, AttributeError):
        log.info("libsodium's verify_detached is not exported by PyNaCl here; using crypto_sign_open")
        return None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    function.restype = ctypes.c_int
    return function


_VERIFY_DETACHED = _load_verify_detached()
