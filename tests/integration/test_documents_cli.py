"""`controlplane documents issue` and `documents import` as operators run them: real processes, the
test database, the session's OpenBao (signing through the org's own AppRole)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from controlplane.documents.models import Document
from controlplane.settings import Settings
from controlplane.storage import Database
from tests.fixtures.app import run_controlplane, settings_env

pytestmark = pytest.mark.integration


def org_token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "org-token"
    path.write_text(token + "\n", encoding="utf-8")
    return str(path)


def test_issue_prints_token_and_url_and_writes_the_qr(
    database: Database, tenancy_settings: Settings, controlplane_token: str, document_org: str,
    sample_file: tuple[Path, str], tmp_path: Path, api_token_for: Callable[..., str],
) -> None:
    path, digest = sample_file
    qr = tmp_path / "qr.png"
    env = settings_env(tenancy_settings, vault_token=controlplane_token)
    token_file = org_token_file(tmp_path, api_token_for(document_org))
    done = run_controlplane("documents", "issue", "--org", document_org, "--token-file", token_file,
                            "--type", "letter",
                            "--title", "Appointment letter", "--recipient", "Hana Aziz", "--file", str(path),
                            "--qr-out", str(qr), env=env)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    serial, url = lines["serial"].strip(), lines["url"].strip()
    [barcode] = zxingcpp.read_barcodes(Image.open(qr))
    assert barcode.text == url and url.endswith("/V/" + lines["token"].strip())
    with database.transaction() as s:
        doc = s.get(Document, serial)
        assert doc is not None and doc.org == document_org and doc.sha256 == digest
        assert doc.recipient == "Hana Aziz"


def test_import_reports_bad_rows_by_line_and_resumes(
    database: Database, tenancy_settings: Settings, controlplane_token: str, document_org: str,
    tmp_path: Path, api_token_for: Callable[..., str],
) -> None:
    rows = [
        {"ref": "L-1", "doc_type": "letter", "title": "Letter one", "recipient": "Ali",
         "sha256": hashlib.sha256(b"1").hexdigest(), "issued_at": "2019-03-01"},
        {"ref": "L-2", "doc_type": "letter", "title": "Letter two", "recipient": "Zana",
         "sha256": "not-a-digest", "issued_at": "2019-03-02"},
        {"ref": "L-3", "doc_type": "letter", "title": "Letter three", "recipient": "Rozh",
         "sha256": hashlib.sha256(b"3").hexdigest(), "issued_at": "2019-03-03"},
        {"ref": "L-1", "doc_type": "letter", "title": "Letter one again", "recipient": "Ali",
         "sha256": hashlib.sha256(b"1").hexdigest(), "issued_at": "2019-03-01"},
        {"ref": "L-5", "doc_type": "letter", "title": "Letter five", "recipient": "Shan",
         "sha256": hashlib.sha256(b"5").hexdigest(), "issued_at": "2020-01-01"},
    ]
    path = tmp_path / "legacy.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    env = settings_env(tenancy_settings, vault_token=controlplane_token)
    token_file = org_token_file(tmp_path, api_token_for(document_org))

    first = run_controlplane("documents", "import", str(path), "--org", document_org, "--batch-size", "2",
                             "--token-file", token_file, env=env)
    assert first.returncode == 1, first.stderr  # bad rows make the exit code non-zero
    assert f"{path}:3: ref L-2: sha256" in first.stderr and f"{path}:5: ref L-1: " in first.stderr
    assert "5 row(s) read: 3 imported, 0 already imported earlier, 2 bad" in first.stdout
    again = run_controlplane("documents", "import", str(path), "--org", document_org,
                             "--token-file", token_file, env=env)
    assert "5 row(s) read: 0 imported, 3 already imported earlier, 2 bad" in again.stdout, again.stderr
    with database.transaction() as s:
        refs = sorted(s.scalars(select(Document.import_ref).where(Document.org == document_org)))
    assert refs == ["L-1", "L-3", "L-5"]
