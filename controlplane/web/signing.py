"""The process's one OrgSigner, shared by the API (issuance) and both channels' key rotation."""

from __future__ import annotations

import threading
from typing import cast

from flask import current_app

from controlplane.documents.signer import OrgSigner
from controlplane.errors import InvalidInput
from controlplane.web import context

_SIGNER = "controlplane.org_signer"
_signer_lock = threading.Lock()


def org_signer() -> OrgSigner:
    """One OrgSigner per process: it caches each org's Vault identity across requests."""
    ext = current_app.extensions
    if ext.get(_SIGNER) is None:
        backends, error = context.backends()
        if backends is None:
            raise error or InvalidInput("the key backend is not configured")
        with _signer_lock:
            if ext.get(_SIGNER) is None:
                signer = ext[_SIGNER] = OrgSigner(backends.keys, context.database())
                # At shutdown its Vault identities go, their secret_ids destroyed.
                ext["controlplane.closers"].append(signer.close)
    return cast(OrgSigner, ext[_SIGNER])


def forget_signing_key(org: str) -> None:
    """After a rotation: this process signs the org's next document with the new version at once
    (other processes reread the key within signer.KEY_MAX_AGE)."""
    signer = current_app.extensions.get(_SIGNER)
    if signer is not None:
        cast(OrgSigner, signer).forget(org)
