"""`controlplane documents ...`: verify a token or QR image offline, publish the trust list, import
legacy records or issue a document with an organisation's own token (`monitor`: documents_monitor)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from controlplane.commands.context import pass_ctx
from controlplane.errors import InvalidInput

# Exit codes of `documents verify`, one per verdict, so scripts can tell them apart.
EXIT_CODES = {
    "valid": 0,
    "revoked": 10,
    "superseded": 11,
    "expired": 12,
    "unknown_issuer": 13,
    "forged": 14,
    "not_found": 15,
    "malformed": 16,
}
EXIT_NO_TRUST = 3  # the trust list or root key is missing, stale or not genuine: nothing was verified
EXIT_NO_QR = 4  # the image holds no readable QR code
TRUST_LIST_FILE = "trust-list.json"
TRUST_ROOT_FILE = "trust-root.pub"
_URL_TOKEN = re.compile(r"/v/([A-Za-z2-7]+)/?$", re.IGNORECASE)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


@click.group()
def documents() -> None:
    """Signed documents: verify offline, trust list, legacy import, issue."""


# ------------------------------------------------------------------------------- verify
def read_qr(path: Path) -> str:
    """The text of the first QR code in an image (zxing-cpp; Pillow reads the file)."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            qr_only = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
            found = zxingcpp.read_barcodes(image.convert("L"), formats=qr_only)
    except (OSError, UnidentifiedImageError) as exc:
        raise InvalidInput(f"{path}: not an image we can read ({exc})") from None
    if not found:
        click.echo(f"{path}: no QR code found in the image", err=True)
        sys.exit(EXIT_NO_QR)
    return str(found[0].text)


def _is_image(subject: str) -> bool:
    if subject.lower().endswith(_IMAGE_SUFFIXES):
        return True
    try:
        return Path(subject).is_file()
    except OSError:  # a token is longer than a file name may be
        return False


def token_of(subject: str) -> str:
    """The token in a verification URL (…/V/<token>), or the subject itself."""
    text = subject.strip()
    match = _URL_TOKEN.search(text)
    return match.group(1) if match else text


def read_root_key(path: Path) -> bytes:
    """The 32-byte Ed25519 root public key: raw, base64(url) or hex text."""
    data = path.read_bytes()
    if len(data) == 32:
        return data
    text = data.decode("ascii", "replace").strip()
    candidates = []
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        candidates.append(bytes.fromhex(text))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_")
                                                   + "=" * (-len(text) % 4)))
    for key in candidates:
        if len(key) == 32:
            return key
    raise InvalidInput(f"{path}: not an Ed25519 public key (32 bytes, raw, base64 or hex)")


def _trust_files(ctx: Any, trust_list: str | None, root_key: str | None) -> tuple[Path, Path]:
    instance = Path(ctx.settings.instance_path) if (trust_list is None or root_key is None) else Path()
    return (Path(trust_list) if trust_list else instance / TRUST_LIST_FILE,
            Path(root_key) if root_key else instance / TRUST_ROOT_FILE)


def _print_result(result: Any) -> None:
    body = result.to_json()
    verdict = str(body.get("verdict"))
    colour = "green" if verdict == "valid" else "red"
    click.echo(click.style(f"verdict: {verdict}", fg=colour, bold=True))
    for key, value in body.items():
        if key != "verdict" and value not in (None, ""):
            click.echo(f"  {key}: {value}")


@documents.command("verify")
@click.argument("subject")
@click.option("--trust-list", "trust_list", type=click.Path(dir_okay=False), default=None,
              help=f"Signed trust list JSON [default: <instance>/{TRUST_LIST_FILE}].")
@click.option("--root-key", type=click.Path(dir_okay=False), default=None,
              help=f"The data center's root public key [default: <instance>/{TRUST_ROOT_FILE}].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def verify(ctx: Any, subject: str, trust_list: str | None, root_key: str | None, as_json: bool) -> None:
    """Verify SUBJECT (a token, a verification URL, or an image file with the QR code) offline:
    no network, no database, only the trust list and the root key.

    \b
    Exit codes: 0 valid, 10 revoked, 11 superseded, 12 expired, 13 unknown issuer,
    14 forged, 15 not found, 16 malformed token, 3 trust list or root key missing,
    stale or not genuine, 4 no QR code in the image, 2 usage error.
    """
    from controlplane.documents.errors import TrustListInvalid
    from controlplane.documents.trustlist import load_trust_list
    from controlplane.documents.verification import verify_offline

    if _is_image(subject):
        subject = read_qr(Path(subject))
    token = token_of(subject)
    list_path, key_path = _trust_files(ctx, trust_list, root_key)
    try:
        for path, what in ((list_path, "trust list"), (key_path, "root key")):
            if not path.is_file():
                raise TrustListInvalid(f"no {what} at {path}",
                                       hint="download /trust-list.json and the root key, or pass "
                                            "--trust-list and --root-key")
        trusted = load_trust_list(list_path.read_bytes(), root_public_key=read_root_key(key_path))
        result = verify_offline(token, trusted)  # refuses a list that went stale meanwhile
    except (TrustListInvalid, InvalidInput) as exc:
        click.echo(f"controlplane: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"  fix: {exc.hint}", err=True)
        sys.exit(EXIT_NO_TRUST)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_result(result)
    sys.exit(EXIT_CODES.get(str(result.verdict), 1))


# ---------------------------------------------------------------------------- trust list
def _database_and_keys(ctx: Any) -> tuple[Any, Any]:
    from controlplane.backends.vault import VaultKeys
    from controlplane.migrations import current_revision, head_revision

    database = ctx.database()
    database.ping()
    if current_revision(database) != head_revision(database):
        raise InvalidInput("the database schema is not current", hint="run: controlplane db upgrade")
    return database, VaultKeys.from_settings(ctx.settings)


@documents.command("trust-list")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Where to write the signed trust list (JSON).")
@pass_ctx
def trust_list_command(ctx: Any, output: str) -> None:
    """Publish the trust list when due (every organisation's public keys and the revocations, signed
    with the data center's root key in Vault) and write the current one; also <instance>/trust-root.pub."""
    from controlplane.backends import load_publisher_keys
    from controlplane.documents.publication import current_trust_list

    database, keys = _database_and_keys(ctx)
    # the trust-root key sits behind the publisher's identity (vault_publisher_token) where there is one
    publisher = load_publisher_keys(ctx.settings) or keys
    published = current_trust_list(database, publisher, initiator="cli:documents-trust-list")
    Path(output).write_bytes(published.body)
    root = Path(ctx.settings.instance_path) / TRUST_ROOT_FILE
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_text(base64.urlsafe_b64encode(published.root_public_key).decode().rstrip("=") + "\n",
                        encoding="utf-8")
    payload = json.loads(published.body)["payload"]
    click.echo(f"wrote {output}: {len(payload['issuers'])} issuer(s), {len(payload['revoked'])} "
               f"revocation(s), valid until {payload['next_update']}; root key: {root}")


# --------------------------------------------------------------------------------- issue
def read_token_file(path: str) -> str:
    """An API token from a file (its first line), never from the command line where `ps` shows it."""
    text = Path(path).read_text(encoding="utf-8").strip()
    if not text:
        raise InvalidInput(f"{path} is empty: put the organisation's API token (cpt_...) in it")
    return text.splitlines()[0].strip()


def _signing_caller(database: Any, org: str, token_file: str) -> Any:
    """The organisation token in `token_file` as a signing caller of `org` (401/403 otherwise).
    Whoever runs the command holds the control plane's own credentials; the ministry's token is
    what makes the signature the ministry's, and the log records it as the signer."""
    from controlplane.accounts.tokens import authenticate_bearer
    from controlplane.documents.callers import token_caller
    from controlplane.errors import PermissionDenied

    secret = read_token_file(token_file)
    with database.sessionmaker() as session:
        try:
            actor = authenticate_bearer(session, f"Bearer {secret}")
        finally:
            session.commit()  # a refusal of a known token is audited, as in the API
    caller = token_caller(actor)
    if caller.org != org:
        raise PermissionDenied(f"the token in {token_file} is a token of {caller.org!r}, not of {org!r}")
    return caller


_CALLER_HELP = ("File holding an API token of ORG with documents:issue (an operator cannot sign "
                    "for an organisation).")


@documents.command("issue")
@click.option("--org", required=True, help="The issuing organisation (tenant slug).")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help=_CALLER_HELP)
@click.option("--type", "doc_type", required=True, help="Document type, e.g. birth-certificate.")
@click.option("--title", required=True)
@click.option("--recipient", required=True, help="Stored in full, shown only masked.")
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The document file; only its SHA-256 is signed and stored.")
@click.option("--expires", default=None, help="Optional expiry (ISO 8601 date or time, UTC).")
@click.option("--qr-out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the QR code as PNG here.")
@pass_ctx
def issue(ctx: Any, org: str, token_file: str, doc_type: str, title: str, recipient: str,
          file_path: str, expires: str | None, qr_out: str | None) -> None:
    """Sign and register one document as ORG, for ORG's own token (through the org's own Vault
    identity, logged in the audit log); print its serial, token and verification URL."""
    from controlplane.documents.issuance import NewDocument, issue_documents
    from controlplane.documents.qr import qr_png
    from controlplane.documents.signer import OrgSigner

    digest = hashlib.sha256()
    with open(file_path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    item = NewDocument.parse({"doc_type": doc_type, "title": title, "recipient": recipient,
                              "sha256": digest.hexdigest(), "expires_at": expires})
    database, keys = _database_and_keys(ctx)
    caller = _signing_caller(database, org, token_file)
    with OrgSigner(keys, database) as signer:
        [doc] = issue_documents(database, signer, caller, [item], base_url=ctx.settings.verify_base_url)
    click.echo(f"serial: {doc.serial}\ntoken:  {doc.token}\nurl:    {doc.url}")
    if qr_out:
        Path(qr_out).write_bytes(qr_png(doc.url, scale=8))
        click.echo(f"QR code: {qr_out}")


# -------------------------------------------------------------------------------- import
def _count_rows(path: Path) -> int:
    import csv

    with path.open(newline="", encoding="utf-8-sig") as fh:
        return max(0, sum(1 for _ in csv.reader(fh)) - 1)  # the header row is not a record


@documents.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--org", required=True, help="The organisation that issued these records.")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help=_CALLER_HELP)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=500, show_default=True,
              help="Documents signed per Vault call and written per transaction.")
@pass_ctx
def import_command(ctx: Any, csv_file: str, org: str, token_file: str, batch_size: int) -> None:
    """Import existing verified records from FILE.csv (header: ref, doc_type, title, recipient,
    sha256, issued_at[, expires_at]) as ORG's signed documents.

    Resumable: run it again after an interruption and the refs already imported are skipped.
    Bad rows are listed with their line numbers and do not stop the import; the exit code is 1
    when there was any bad row, 0 otherwise."""
    import csv

    from controlplane.documents.legacy_import import ImportReport, import_rows
    from controlplane.documents.signer import OrgSigner

    path = Path(csv_file)
    total = _count_rows(path)
    database, keys = _database_and_keys(ctx)
    caller = _signing_caller(database, org, token_file)
    with path.open(newline="", encoding="utf-8-sig") as fh, click.progressbar(
        length=total, label=f"importing {total} row(s) for {org}", file=sys.stderr,
        show_pos=True, show_eta=True,
    ) as bar:
        shown = 0

        def progress(report: ImportReport) -> None:
            nonlocal shown
            bar.update(report.rows_read - shown)
            shown = report.rows_read

        with OrgSigner(keys, database) as signer:
            report = import_rows(database, signer, caller, csv.DictReader(fh),
                                 base_url=ctx.settings.verify_base_url,
                                 batch_size=batch_size, on_progress=progress)
        bar.update(report.rows_read - shown)
    for bad in report.bad:
        where = f"ref {bad.ref}: " if bad.ref else ""
        click.echo(f"{path}:{bad.line}: {where}{bad.message}", err=True)
    click.echo(f"{report.rows_read} row(s) read: {report.imported} imported, {report.skipped} already "
               f"imported earlier, {len(report.bad)} bad")
    if report.bad:
        sys.exit(1)
