"""Legacy import: existing verified records, validated row by row, signed in batches, resumable by ref."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from controlplane.audit import AuditAction
from controlplane.documents.callers import SigningCaller
from controlplane.documents.issuance import MAX_BATCH, NewDocument, parse_time, sign_and_register
from controlplane.documents.models import Document
from controlplane.documents.signer import OrgSigner
from controlplane.errors import InvalidInput
from controlplane.storage import Database, utcnow

log = logging.getLogger(__name__)

COLUMNS = ("ref", "doc_type", "title", "recipient", "sha256", "issued_at", "expires_at")
REQUIRED_COLUMNS = frozenset(COLUMNS) - {"expires_at"}
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class BadRow:
    line: int
    ref: str
    message: str


@dataclass
class ImportReport:
    """Running totals; `on_progress` gets it after every batch, the caller gets it at the end."""

    rows_read: int = 0
    imported: int = 0
    skipped: int = 0  # already imported by an earlier (interrupted) run
    bad: list[BadRow] = field(default_factory=list)
    batches: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad


def import_rows(
    database: Database,
    signer: OrgSigner,
    caller: SigningCaller,
    rows: Iterable[Mapping[str, str]],
    *,
    base_url: str,
    batch_size: int = 500,
    on_progress: Callable[[ImportReport], None] | None = None,
    first_line: int = 2,
) -> ImportReport:
    """Import CSV-shaped rows (COLUMNS) for the caller's organisation, signed for that caller (one
    of the organisation's own credentials, see documents.callers). Bad rows are reported with their
    line number (`first_line` is the line of the first row: 2 under a header) and do not stop the import.
    Rerunning after an interruption skips every ref already imported."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise InvalidInput(f"batch_size must be between 1 and {MAX_BATCH}")
    org = caller.org
    report = ImportReport()
    seen: dict[str, int] = {}
    pending: list[tuple[NewDocument, int]] = []
    now = utcnow()
    for line, row in enumerate(rows, start=first_line):
        if report.rows_read == 0:
            _check_columns(row)
        report.rows_read += 1
        ref = str(row.get("ref") or "").strip()
        try:
            entry = _parse_row(row, now)
        except InvalidInput as exc:
            report.bad.append(BadRow(line, ref, exc.message))
            continue
        if ref in seen:
            report.bad.append(BadRow(line, ref, f"ref {ref!r} repeats line {seen[ref]}"))
            continue
        seen[ref] = line
        pending.append(entry)
        if len(pending) >= batch_size:
            _import_batch(database, signer, caller, pending, report, base_url=base_url)
            pending = []
            if on_progress is not None:
                on_progress(report)
    if pending:
        _import_batch(database, signer, caller, pending, report, base_url=base_url)
        if on_progress is not None:
            on_progress(report)
    log.info("legacy import for %s: %d read, %d imported, %d already there, %d bad",
             org, report.rows_read, report.imported, report.skipped, len(report.bad))
    return report


def _check_columns(row: Mapping[str, str]) -> None:
    missing = sorted(REQUIRED_COLUMNS - set(row))
    if missing:
        raise InvalidInput(
            f"the file has no column(s) {', '.join(missing)}; expected a header row with "
            f"{', '.join(COLUMNS)} (expires_at may be left out)"
        )


def _parse_row(row: Mapping[str, str], now: datetime) -> tuple[NewDocument, int]:
    if None in row:  # csv.DictReader puts surplus fields under the key None
        raise InvalidInput("more fields than columns (an unquoted comma?)")
    problems: list[str] = []
    ref = str(row.get("ref") or "").strip()
    if not ref:
        problems.append("ref: required")
    issued_at = parse_time(row.get("issued_at"), "issued_at", problems)
    if issued_at is None and not any(p.startswith("issued_at") for p in problems):
        problems.append("issued_at: required")
    if issued_at is not None and issued_at > now + CLOCK_SKEW:
        problems.append("issued_at: in the future")
    try:
        document = NewDocument.parse({
            "doc_type": row.get("doc_type"), "title": row.get("title"),
            "recipient": row.get("recipient"), "sha256": row.get("sha256"),
            "expires_at": row.get("expires_at") or None, "import_ref": ref or None,
        })
    except InvalidInput as exc:
        problems.insert(0, exc.message)
        document = None
    if document is not None and issued_at is not None and document.expires_at is not None \
            and document.expires_at <= issued_at:
        problems.append("expires_at: must be after issued_at")
    if problems or document is None or issued_at is None:
        raise InvalidInput("; ".join(problems))
    return document, int(issued_at.timestamp())


def _import_batch(
    database: Database,
    signer: OrgSigner,
    caller: SigningCaller,
    batch: list[tuple[NewDocument, int]],
    report: ImportReport,
    *,
    base_url: str,
) -> None:
    org = caller.org
    refs = [doc.import_ref for doc, _ in batch]
    with database.engine.connect() as conn:
        done = set(conn.execute(
            select(Document.import_ref).where(Document.org == org, Document.import_ref.in_(refs))
        ).scalars())
    todo = [(doc, at) for doc, at in batch if doc.import_ref not in done]
    report.skipped += len(batch) - len(todo)
    if todo:
        sign_and_register(database, signer, caller, todo, base_url=base_url,
                          action=AuditAction.DOCUMENT_IMPORT)
        report.imported += len(todo)
    report.batches += 1
