"""Legacy import on a real OpenBao: bad rows reported by line, good rows signed in batches; an
interrupted import rerun completes without duplicates."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from controlplane.audit.models import AuditEvent
from controlplane.backends.keys import KeyBackend
from controlplane.documents.legacy_import import ImportReport, import_rows
from controlplane.documents.models import Document
from controlplane.documents.signer import OrgSigner
from controlplane.documents.verification import PublicKeyCache, Verdict, verify_token
from controlplane.errors import InvalidInput
from controlplane.storage import Database
from tests.fixtures.documents import prepare_signing_org, signing_caller
from tests.fixtures.vault import VaultJanitor

pytestmark = pytest.mark.integration

HEADER = "ref,doc_type,title,recipient,sha256,issued_at,expires_at\n"


def good_line(i: int) -> str:
    digest = hashlib.sha256(b"legacy %d" % i).hexdigest()
    return f"REF-{i:05d},degree,Bachelor of Science {i},\"Salih, Ahmed\",{digest},2019-06-{1 + i % 28:02d},\n"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


class Interrupted(Exception):
    pass


@pytest.fixture
def org(vault_keys: KeyBackend, make_vault_janitor: Callable[[KeyBackend], VaultJanitor]) -> str:
    return prepare_signing_org(vault_keys, make_vault_janitor(vault_keys))


def run(database: Database, signer: OrgSigner, org: str, text: str, **options: object) -> ImportReport:
    return import_rows(database, signer, signing_caller(database, org), rows_of(text),
                       base_url="https://verify.example.gov", **options)  # type: ignore[arg-type]


def test_bad_rows_are_reported_by_line_and_good_rows_imported(
    database: Database, signer: OrgSigner, org: str
) -> None:
    text = HEADER + good_line(1) + (
        "REF-X,degree,No digest,Someone,,2019-01-01,\n"  # line 3
        "REF-Y,Degree!,Bad type,Someone," + "a" * 64 + ",2019-01-01,\n"  # line 4
        "REF-Z,degree,Bad date,Someone," + "a" * 64 + ",yesterday,\n"  # line 5
        "REF-W,degree,Expired before issued,Someone," + "a" * 64 + ",2019-01-01,2018-01-01\n"  # line 6
        "REF-V,degree,Too,many,fields," + "a" * 64 + ",2019-01-01,,x\n"  # line 7
    ) + good_line(2) + good_line(1).replace("Science 1", "Science one")  # line 8; 9 repeats ref of 2

    report = run(database, signer, org, text, batch_size=10)

    assert (report.rows_read, report.imported, report.skipped) == (8, 2, 0)
    bad = {row.line: (row.ref, row.message) for row in report.bad}
    assert sorted(bad) == [3, 4, 5, 6, 7, 9]
    assert "sha256: required" in bad[3][1]
    assert "doc_type" in bad[4][1]
    assert "issued_at" in bad[5][1]
    assert "expires_at: must be after issued_at" in bad[6][1]
    assert "more fields" in bad[7][1]
    assert bad[9] == ("REF-00001", "ref 'REF-00001' repeats line 2")
    cache = PublicKeyCache(database)
    with database.transaction() as session:
        docs = session.scalars(select(Document).order_by(Document.import_ref)).all()
        assert [d.import_ref for d in docs] == ["REF-00001", "REF-00002"]
        assert docs[0].recipient == "Salih, Ahmed"
        assert docs[0].issued_at.date().isoformat() == "2019-06-02"
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action.like("document:%"))).all()
        assert event.action == "document:import" and event.detail["count"] == 2
    for doc in docs:
        result = verify_token(database, cache, doc.token)
        assert result.verdict is Verdict.VALID and result.issued_at == doc.issued_at.replace(
            tzinfo=result.issued_at.tzinfo)


def test_an_interrupted_import_resumes_without_duplicates(
    database: Database, signer: OrgSigner, org: str
) -> None:
    text = HEADER + "".join(good_line(i) for i in range(25))
    progress: list[int] = []

    def stop_after_first_batch(report: ImportReport) -> None:
        progress.append(report.imported)
        raise Interrupted

    with pytest.raises(Interrupted):
        run(database, signer, org, text, batch_size=10, on_progress=stop_after_first_batch)
    assert progress == [10]

    seen: list[tuple[int, int]] = []
    report = run(database, signer, org, text, batch_size=10,
                 on_progress=lambda r: seen.append((r.imported, r.skipped)))

    assert (report.rows_read, report.imported, report.skipped, report.bad) == (25, 15, 10, [])
    assert seen == [(0, 10), (10, 10), (15, 10)]
    with database.transaction() as session:
        refs = session.scalars(select(Document.import_ref)).all()
        assert sorted(refs) == [f"REF-{i:05d}" for i in range(25)]
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action.like("document:%"))) == 3  # one per batch written
    # A third run finds everything there.
    again = run(database, signer, org, text, batch_size=10)
    assert (again.imported, again.skipped) == (0, 25)


def test_a_file_without_the_columns_is_refused_up_front(
    database: Database, signer: OrgSigner, org: str
) -> None:
    with pytest.raises(InvalidInput, match="no column"):
        run(database, signer, org, "id,name\n1,x\n")
    with pytest.raises(InvalidInput, match="batch_size"):
        run(database, signer, org, HEADER + good_line(1), batch_size=5000)
