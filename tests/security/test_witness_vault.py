"""The witness's key lives only in the witness's own OpenBao: the control plane's Vault token (policy
from controlplane.backends.keys.controlplane_policy_hcl) gets 403 there, the control plane's Vault
holds no key that could make a witness cosignature, and the witness's own token can sign with its
one key and do nothing else."""

from __future__ import annotations

import base64
from collections.abc import Callable

import requests
from sqlalchemy import select

from controlplane.audit.checkpoints import DEFAULT_ORIGIN
from controlplane.audit.models import AuditCheckpoint
from controlplane.audit.sequencer import with_sequencer
from controlplane.audit.witnessing import WitnessLink
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from tests.fixtures.vault import DevVault
from tests.fixtures.witness import WITNESS_KEY, RunningWitness, WitnessBao, log_vkeys
from tests.integration.audit_helpers import (
    add_events,
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    pinned,
)

INPUT = {"input": base64.b64encode(b"cosignature/v1\ntime 1\nforged\n").decode()}


def _as(token: str) -> dict[str, str]:
    return {"X-Vault-Token": token}


def test_the_control_plane_vault_token_gets_403_signing_as_the_witness(
    witness_bao: WitnessBao, controlplane_token: str
) -> None:
    paths = (f"transit/sign/{WITNESS_KEY}", f"transit/keys/{WITNESS_KEY}/rotate", "sys/policies/acl/witness")
    for path in paths:
        answer = requests.post(f"{witness_bao.addr}/v1/{path}", headers=_as(controlplane_token), json=INPUT,
                               timeout=10)
        assert answer.status_code == 403, (path, answer.text)


def test_the_control_plane_vault_holds_no_witness_key(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    make_witness: Callable[..., RunningWitness],
    vault_server: DevVault,
) -> None:
    witness = make_witness({DEFAULT_ORIGIN: log_vkeys(audit_keys)})
    add_events(database, 3)
    with_sequencer(None, audit_keys, pin_path=pinned(settings),
                   witness=WitnessLink(witness.url, (witness.verifier,)))(database)
    with database.transaction() as s:
        assert s.scalar(select(AuditCheckpoint.cosignature).where(AuditCheckpoint.tree_size == 3))
    root = _as(vault_server.root_token)
    names = requests.request("LIST", f"{vault_server.addr}/v1/transit/keys", headers=root, timeout=10)
    names.raise_for_status()
    witness_public = witness.verifier.public_key
    for name in names.json()["data"]["keys"]:
        assert "witness" not in name
        key = requests.get(f"{vault_server.addr}/v1/transit/keys/{name}", headers=root, timeout=10).json()
        publics = {base64.b64decode(v.get("public_key") or "") for v in key["data"]["keys"].values()
                   if isinstance(v, dict)}
        assert witness_public not in publics, name


def test_the_witness_token_signs_with_its_key_and_nothing_else(witness_bao: WitnessBao) -> None:
    server, token = witness_bao.server, witness_bao.token
    server.api("POST", "transit/keys/other-key", type="ed25519")
    signed = requests.post(f"{server.addr}/v1/transit/sign/{WITNESS_KEY}", headers=_as(token), json=INPUT,
                           timeout=10)
    assert signed.status_code == 200
    for method, path in (
        ("POST", "transit/sign/other-key"),
        ("POST", f"transit/keys/{WITNESS_KEY}/rotate"),
        ("POST", f"transit/keys/{WITNESS_KEY}/config"),
        ("POST", "transit/keys/new-key"),
        ("GET", "sys/policies/acl/witness"),
        ("POST", "sys/mounts/kv"),
        ("POST", "auth/token/create"),
    ):
        url = f"{server.addr}/v1/{path}"
        answer = requests.request(method, url, headers=_as(token), json=INPUT, timeout=10)
        assert answer.status_code == 403, (method, path, answer.status_code)
