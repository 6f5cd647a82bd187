"""Errors of the documents capability: a token we cannot read, a trust list we cannot trust."""

from __future__ import annotations

from controlplane.errors import ControlPlaneError, InvalidInput


class MalformedToken(InvalidInput):
    """The token is not a well-formed signed document (bad characters, size, CBOR or COSE)."""

    title = "Malformed token"


class TrustListInvalid(InvalidInput):
    """A trust list whose signature, format or freshness we refuse; nothing is verified against it."""

    title = "Trust list refused"


class TrustListNotPublished(ControlPlaneError):
    """No current trust list is stored yet (the control plane publishes it): try again shortly."""

    status = 503
    title = "Trust list not published yet"
