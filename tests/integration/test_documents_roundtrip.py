"""Issue 5's round trip, end to end over real HTTP and a real CLI process: issue → QR PNG → decode
with zxing-cpp → verify online (page and JSON) and offline (`controlplane documents verify` with the
trust list, no network, no database) → revoke → both verdicts change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import zxingcpp
from PIL import Image

from controlplane.backends import Backends
from controlplane.commands.documents import EXIT_CODES, EXIT_NO_TRUST
from controlplane.settings import Settings
from tests.fixtures.app import run_controlplane, settings_env
from tests.fixtures.browser import LiveServer

pytestmark = [pytest.mark.integration]


def offline_verify(subject: str | Path, trust_list: Path, root_key: Path,
                   tmp_path: Path) -> tuple[int, str]:
    """The CLI with nothing but an instance folder: no database URL, no Vault, no cloud."""
    result = run_controlplane("documents", "verify", str(subject), "--trust-list", str(trust_list),
                              "--root-key", str(root_key),
                              env={"CONTROLPLANE_INSTANCE_PATH": str(tmp_path / "offline")}, timeout=60)
    return result.returncode, result.stdout + result.stderr


def test_issue_qr_verify_online_and_offline_then_revoke(
    live_server: LiveServer, backends: Backends, tenancy_settings: Settings, controlplane_token: str,
    document_org: str, api_token_for: Callable[..., str], sample_file: tuple[Path, str], tmp_path: Path,
) -> None:
    auth = {"Authorization": f"Bearer {api_token_for(document_org)}"}
    _, digest = sample_file
    issued = requests.post(live_server.url("/api/v1/documents"), headers=auth, timeout=30, json={
        "doc_type": "residence-permit", "title": "Residence permit", "recipient": "Sara Omar Ali",
        "sha256": digest, "expires_at": "2099-12-31"})
    assert issued.status_code == 201, issued.text
    doc = issued.json()

    # QR PNG -> zxing-cpp -> the verification URL, all uppercase (QR alphanumeric mode)
    png = requests.get(live_server.url(doc["qr_png_url"]), headers=auth, timeout=30)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    qr_path = tmp_path / "qr.png"
    qr_path.write_bytes(png.content)
    [barcode] = zxingcpp.read_barcodes(Image.open(qr_path))
    assert barcode.text == doc["url"] == doc["url"].upper()
    token = barcode.text.rsplit("/V/", 1)[1]
    assert token == doc["token"]

    # online: the page a phone opens (same path as in the QR) and the JSON twin
    page = requests.get(live_server.url(f"/V/{token}?lang=en"), timeout=30)
    assert page.status_code == 200 and 'data-verdict="valid"' in page.text
    assert "Sara Omar Ali" not in page.text and "S**** O**** A****" in page.text
    online = requests.get(live_server.url(f"/api/v1/verify/{token}"), timeout=30).json()
    assert online["verdict"] == "valid" and online["sha256"] == digest

    # offline: the trust list as published, the root key the app wrote, the PNG itself
    trust_list = tmp_path / "trust-list.json"
    published = requests.get(live_server.url("/trust-list.json"), timeout=30)
    assert published.headers["Cache-Control"] == "public, max-age=60"
    trust_list.write_bytes(published.content)
    root_key = Path(live_server.settings.instance_path) / "trust-root.pub"
    assert root_key.is_file()
    code, out = offline_verify(qr_path, trust_list, root_key, tmp_path)
    assert code == 0 and "verdict: valid" in out, out
    code, out = offline_verify(doc["url"], trust_list, root_key, tmp_path)  # the URL works as well
    assert code == 0, out

    # revoke: the online verdict changes at once, the offline one with the next trust list
    revoked = requests.post(live_server.url(f"/api/v1/documents/{doc['serial']}/revoke"), headers=auth,
                            json={"reason": "permit withdrawn"}, timeout=30)
    assert revoked.status_code == 200, revoked.text
    page = requests.get(live_server.url(f"/V/{token}?lang=en"), timeout=30)
    assert 'data-verdict="revoked"' in page.text and "permit withdrawn" in page.text
    assert requests.get(live_server.url(f"/api/v1/verify/{token}"), timeout=30).json()["verdict"] == "revoked"
    fresh = tmp_path / "trust-list-2.json"
    listed = run_controlplane("documents", "trust-list", "--output", str(fresh),
                              env=settings_env(tenancy_settings, vault_token=controlplane_token))
    assert listed.returncode == 0, listed.stderr
    revocations = json.loads(fresh.read_text())["payload"]["revoked"]
    assert {"serial": doc["serial"], "reason": "permit withdrawn"}.items() <= next(
        r for r in revocations if r["serial"] == doc["serial"]).items()
    code, out = offline_verify(qr_path, fresh, root_key, tmp_path)
    assert code == EXIT_CODES["revoked"] and "verdict: revoked" in out and "permit withdrawn" in out, out
    # the web app's cached list is dropped on revocation, so the published one says so too
    republished = requests.get(live_server.url("/trust-list.json"), timeout=30).json()
    assert doc["serial"] in {r["serial"] for r in republished["payload"]["revoked"]}


def test_offline_verify_refuses_a_tampered_trust_list_and_names_every_verdict(
    live_server: LiveServer, backends: Backends, document_org: str, api_token_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    auth = {"Authorization": f"Bearer {api_token_for(document_org)}"}
    doc = requests.post(live_server.url("/api/v1/documents"), headers=auth, timeout=30, json={
        "doc_type": "letter", "title": "Letter", "recipient": "Omar",
        "sha256": hashlib.sha256(b"letter").hexdigest()}).json()
    trust_list = tmp_path / "trust-list.json"
    trust_list.write_bytes(requests.get(live_server.url("/trust-list.json"), timeout=30).content)
    root_key = Path(live_server.settings.instance_path) / "trust-root.pub"

    tampered = json.loads(trust_list.read_text())
    tampered["payload"]["issuers"][document_org]["name"] = "Someone else"
    forged_list = tmp_path / "tampered.json"
    forged_list.write_text(json.dumps(tampered))
    code, out = offline_verify(doc["token"], forged_list, root_key, tmp_path)
    assert code == EXIT_NO_TRUST and "signature does not verify" in out, out

    token = doc["token"]
    flipped = token[:-20] + ("A" if token[-20] != "A" else "B") + token[-19:]
    for subject, verdict in ((token, "valid"), (token.lower(), "valid"), (flipped, "forged"),
                             (token[:30], "malformed"), ("not a token", "malformed")):
        code, out = offline_verify(subject, trust_list, root_key, tmp_path)
        assert code == EXIT_CODES[verdict] and f"verdict: {verdict}" in out, (subject[:20], out)
    missing = run_controlplane("documents", "verify", token,
                               env={"CONTROLPLANE_INSTANCE_PATH": str(tmp_path / "empty")}, timeout=60)
    assert missing.returncode == EXIT_NO_TRUST and "no trust list" in missing.stderr
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    code, out = offline_verify(blank, trust_list, root_key, tmp_path)
    assert code == 4 and "no QR code" in out
