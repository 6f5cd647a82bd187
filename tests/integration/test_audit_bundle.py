"""Audit bundles: `audit export` then `audit verify` (no database, no network) passes, and any single
change to a bundle fails it naming the fault; the CLI commands end to end; the proofs over the API."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from controlplane.accounts.models import Role
from controlplane.audit.bundle import export_bundle
from controlplane.audit.checkpoints import DEFAULT_ORIGIN, read_pinned_keys
from controlplane.audit.verify import verify_bundle
from controlplane.audit.witnessing import WitnessLink, cosign_latest
from controlplane.backends.keys import KeyBackend
from controlplane.settings import Settings
from controlplane.storage import Database
from controlplane.tlog import merkle
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.vault import DevVault
from tests.fixtures.witness import RunningWitness, log_vkeys
from tests.integration.api_actors import bearer, make_user, operator_token, org_token
from tests.integration.audit_helpers import (
    audit_keys_fixture,  # noqa: F401 (the audit_keys fixture)
    build_log,
    pinned,
)

pytestmark = pytest.mark.integration


def read_bundle(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def write_bundle(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def _edit_event(m: dict[str, bytes]) -> None:
    lines = m["events.jsonl"].split(b"\n")
    lines[4] = lines[4].replace(b'"success"', b'"failure"')
    m["events.jsonl"] = b"\n".join(lines)


def _remove_event(m: dict[str, bytes]) -> None:
    lines = m["events.jsonl"].split(b"\n")
    del lines[2]
    m["events.jsonl"] = b"\n".join(lines)
    manifest = json.loads(m["manifest.json"])  # a careful forger fixes the counts too
    manifest["tree_size"] = manifest["events"] = manifest["tree_size"] - 1
    m["manifest.json"] = json.dumps(manifest).encode()


def _flip_cosignature(note: str) -> str:
    """Flip a byte of the Ed25519 signature in the note's last line (the witness's cosignature)."""
    head, _, last = note.rstrip("\n").rpartition("\n")
    dash, name, sig = last.split(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    return f"{head}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"


def _json_edit(member: str, edit: Callable[[object], None]) -> Callable[[dict[str, bytes]], None]:
    def apply(m: dict[str, bytes]) -> None:
        doc = json.loads(m[member])
        edit(doc)
        m[member] = json.dumps(doc).encode()

    return apply


def _set(path: list[object], change: Callable[[str], str]) -> Callable[[object], None]:
    def edit(doc: object) -> None:
        for key in path[:-1]:
            doc = doc[key]  # type: ignore[index]
        doc[path[-1]] = change(doc[path[-1]])  # type: ignore[index]

    return edit


CHANGES: dict[str, tuple[Callable[[dict[str, bytes]], None], str]] = {
    "an event field": (_edit_event, "events 0..4"),
    "a removed event": (_remove_event, "events were added or removed"),
    "a proof hash": (
        _json_edit("proofs.json", _set(["consistency", 0, "proof", 0], flip)),
        "consistency proof",
    ),
    "a checkpoint signature": (
        _json_edit("checkpoints.json", _set([1, "signature"], flip)),
        "checkpoint at tree size 9: the audit signature",
    ),
    "a checkpoint root": (
        _json_edit("checkpoints.json", _set([0, "root_hash"], flip)),
        "checkpoint at tree size 5",
    ),
    "a witness co-signature": (
        _json_edit("checkpoints.json", _set([2, "note"], _flip_cosignature)),
        "witness co-signature",
    ),
    "a bundled public key": (
        _json_edit("keys.json", _set(["cp_audit", "1"], flip)),
        "not a pinned audit key",
    ),
}


@pytest.fixture
def bundle(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    tmp_path: Path,
    make_witness: Callable[..., RunningWitness],
) -> Path:
    witness = make_witness({DEFAULT_ORIGIN: log_vkeys(audit_keys)})
    build_log(database, audit_keys, settings, sizes=(5, 4, 3))
    assert cosign_latest(database, WitnessLink(witness.url, (witness.verifier,))) is not None
    exported = export_bundle(database, tmp_path / "audit.tar.gz", witness_vkeys=[witness.vkey])
    assert (exported.tree_size, exported.checkpoints) == (12, 3)
    return exported.path


def test_an_exported_bundle_verifies_offline(bundle: Path, settings: Settings) -> None:
    report = verify_bundle(bundle, pinned_audit_keys=read_pinned_keys(pinned(settings)))
    assert report.faults == []
    assert (report.tree_size, report.checkpoints, report.witnessed) == (12, 3, 1)
    lines = read_bundle(bundle)["events.jsonl"].splitlines()
    assert json.loads(lines[0])["name"] == "account:create"  # CADF records, one per leaf
    # against another pinned key, the same bundle fails
    other = verify_bundle(bundle, pinned_audit_keys=[bytes(32)])
    assert any("not a pinned audit key" in f for f in other.faults)


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_any_change_to_a_bundle_fails_verification(
    bundle: Path, settings: Settings, tmp_path: Path, change: str
) -> None:
    mutate, expected = CHANGES[change]
    members = read_bundle(bundle)
    mutate(members)
    forged = write_bundle(tmp_path / "forged.tar.gz", members)
    report = verify_bundle(forged, pinned_audit_keys=read_pinned_keys(pinned(settings)))
    assert report.faults, f"{change} went unnoticed"
    assert any(expected in f for f in report.faults), report.faults


def test_audit_commands_sequence_check_export_and_verify(
    database: Database,
    audit_keys: KeyBackend,
    settings: Settings,
    vault_server: DevVault,
    controlplane_token: str,
    tmp_path: Path,
    make_witness: Callable[..., RunningWitness],
) -> None:
    witness = make_witness({DEFAULT_ORIGIN: log_vkeys(audit_keys)})
    build_log(database, audit_keys, settings, sizes=(3,))
    env = {
        **settings_env(settings, vault_token=controlplane_token),
        "CONTROLPLANE_VAULT_ADDR": vault_server.addr,
        "CONTROLPLANE_WITNESS_URL": witness.url,
        "CONTROLPLANE_WITNESS_VKEY": witness.vkey,
    }
    done = run_controlplane("audit", "sequence", env=env)
    assert done.returncode == 0, done.stderr
    assert "no new checkpoint" in done.stdout and "witness co-signed tree size 3" in done.stdout
    assert run_controlplane("audit", "check", env=env).returncode == 0
    out = tmp_path / "b.tar.gz"
    assert run_controlplane("audit", "export", "--output", str(out), env=env).returncode == 0
    # verify needs no database and no Vault: point both at nothing
    offline = {
        **env,
        "CONTROLPLANE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "CONTROLPLANE_VAULT_ADDR": "http://127.0.0.1:1",
    }
    verified = run_controlplane("audit", "verify", str(out), env=offline)
    assert verified.returncode == 0, verified.stderr
    assert "3 event(s), 1 checkpoint(s), 1 co-signed" in verified.stdout
    members = read_bundle(out)
    members["events.jsonl"] = members["events.jsonl"].replace(b"user:1", b"user:7", 1)
    forged = write_bundle(tmp_path / "forged.tar.gz", members)
    failed = run_controlplane(
        "audit", "verify", str(forged), "--audit-key", str(pinned(settings)), env=offline
    )
    assert failed.returncode == 1 and "FAULT checkpoint at tree size 3" in failed.stderr
    with database.transaction() as s:
        from sqlalchemy import text

        s.execute(text("DELETE FROM audit_events WHERE leaf_index = 1"))
    checked = run_controlplane("audit", "check", env=env)
    assert checked.returncode == 1
    assert "FAULT deleted: leaf 1:" in checked.stderr


def test_proofs_over_the_api_for_operator_tokens_with_audit_read(
    database: Database, audit_keys: KeyBackend, settings: Settings, client: FlaskClient
) -> None:
    build_log(database, audit_keys, settings, sizes=(5, 4))
    operator = make_user(database, "auditop", Role.OPERATOR, with_mfa=True)
    headers = bearer(operator_token(database, operator, ["audit:read"]))
    cp = client.get("/api/v1/audit/checkpoint", headers=headers)
    assert cp.status_code == 200, cp.json
    body = cp.json or {}
    assert body["tree_size"] == 9 and body["note"].startswith(f"{DEFAULT_ORIGIN}\n9\n")
    assert body["signed_note"].startswith(body["note"] + "\n\u2014 " + DEFAULT_ORIGIN + " ")
    root = base64.b64decode(body["root_hash"])
    inc = client.get("/api/v1/audit/proof/inclusion?leaf_index=6&tree_size=9", headers=headers).json or {}
    assert merkle.verify_inclusion(
        base64.b64decode(inc["leaf_hash"]), 6, 9, [base64.b64decode(h) for h in inc["inclusion_path"]], root
    )
    con = client.get("/api/v1/audit/proof/consistency?first=5&second=9", headers=headers).json or {}
    assert merkle.verify_consistency(
        5,
        9,
        base64.b64decode(con["first_root"]),
        root,
        [base64.b64decode(h) for h in con["consistency_path"]],
    )
    bad = client.get("/api/v1/audit/proof/inclusion?leaf_index=9&tree_size=9", headers=headers)
    assert bad.status_code == 404 and "no leaf 9" in (bad.json or {})["message"]
    beyond = client.get("/api/v1/audit/proof/consistency?first=5&second=10", headers=headers)
    assert beyond.status_code == 404
    malformed = client.get("/api/v1/audit/proof/consistency?first=x&second=9", headers=headers)
    assert malformed.status_code == 400
    other = bearer(operator_token(database, operator, ["tenants:read"]))
    assert client.get("/api/v1/audit/checkpoint", headers=other).status_code == 403
    org = bearer(org_token(database, "health", ["tenants:read"]))
    assert client.get("/api/v1/audit/checkpoint", headers=org).status_code == 403
    assert client.get("/api/v1/audit/checkpoint").status_code == 401
