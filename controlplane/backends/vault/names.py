"""Validation of the key, policy, role and KV path names the adapter sends to Vault."""

from __future__ import annotations

import re

from controlplane.backends.vault.errors import BACKEND
from controlplane.errors import PermanentError

# Key, policy and role names. Transit's own pattern is `\w(([\w-.]+)?\w)?`; no "/" nor globs.
NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$")
_KV_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_name(name: str, kind: str) -> None:
    if not NAME.match(name or ""):
        raise PermanentError(f"invalid {kind} name {name!r}", backend=BACKEND)


def check_key_name(name: str) -> None:
    check_name(name, "signing key")


def check_kv_path(path: str) -> None:
    segments = (path or "").split("/")
    if not all(_KV_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise PermanentError(f"invalid secret path {path!r}", backend=BACKEND)
