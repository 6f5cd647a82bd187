"""`controlplane documents monitor`: a ministry checks everything signed with its key against the audit log.

Runs anywhere the ministry likes (no database, no Vault): it fetches GET /api/v1/documents/issued
with the ministry's own token, page by page, and verifies every proof against the audit public key
it pinned (documents.monitor). Exit 0: every registry entry is in the log (or pending within the
allowed delay); 1: a document with no log entry, or a proof that does not verify.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from controlplane.commands.documents import documents, read_token_file
from controlplane.errors import InvalidInput

Fetch = Callable[[Mapping[str, str]], Mapping[str, Any]]
MAX_PAGES = 1_000_000  # 1,000 a page: a billion documents; a loop that never ends is a server bug


def http_fetch(base_url: str, token: str, *, timeout: float = 60.0) -> Fetch:
    """GET <base_url>/api/v1/documents/issued?<params> with the bearer token, as JSON."""
    endpoint = base_url.rstrip("/") + "/api/v1/documents/issued"
    if not endpoint.startswith(("https://", "http://")):
        raise InvalidInput(f"--url {base_url!r}: give the control plane's http(s) address")

    def fetch(params: Mapping[str, str]) -> Mapping[str, Any]:
        url = endpoint + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",  # noqa: S310
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
                body: Mapping[str, Any] = json.load(response)
                return body
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise InvalidInput(f"{url}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise InvalidInput(f"{url}: {exc}") from None

    return fetch


def pages(fetch: Fetch, *, since: str | None = None, limit: int = 1000) -> Iterator[Mapping[str, Any]]:
    params: dict[str, str] = {"limit": str(limit)}
    if since:
        params["since"] = since
    for _ in range(MAX_PAGES):
        page = fetch(params)
        yield page
        cursor = page.get("next_cursor")
        if not cursor:
            return
        params["cursor"] = str(cursor)


def run_monitor(fetch: Fetch, pinned_keys: list[bytes], *, org: str, since: str | None = None,
                max_pending: timedelta = timedelta(minutes=10)) -> Any:
    """Fetch and check every page; the MonitorReport."""
    from controlplane.documents.monitor import MonitorReport, check_page
    from controlplane.storage import utcnow

    report = MonitorReport(org=org)
    now = utcnow()
    for page in pages(fetch, since=since):
        check_page(page, pinned_keys, report, now=now, max_pending=max_pending)
    return report


@documents.command("monitor")
@click.option("--org", required=True, help="Your organisation: the listing must be of it.")
@click.option("--token-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="File holding your organisation's API token (documents:read or documents:issue).")
@click.option("--url", "base_url", required=True, help="The control plane's address, e.g. https://cp.gov.iq")
@click.option("--audit-key", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The data center's audit public key(s), PEM, as you pinned them out of band.")
@click.option("--since", default=None, help="Only documents issued from this time (ISO 8601).")
@click.option("--max-pending-minutes", type=click.IntRange(1, 10080), default=10, show_default=True,
              help="A signature not in a signed checkpoint after this long is reported.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def monitor(org: str, token_file: str, base_url: str, audit_key: str, since: str | None,
            max_pending_minutes: int, as_json: bool) -> None:
    """Check that every document in ORG's registry was signed in the open: each one in the audit
    log (inclusion proof to a checkpoint signed by the pinned audit key), its token exactly what
    was logged, and who signed it. Lists documents with no log entry: signatures made unseen.

    \b
    Exit codes: 0 all logged, 1 unlogged documents or proofs that fail, 2 usage error."""
    from controlplane.audit.checkpoints import read_pinned_keys

    try:
        pinned = read_pinned_keys(Path(audit_key))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the audit key file {audit_key}: {exc}") from None
    fetch = http_fetch(base_url, read_token_file(token_file))
    report = run_monitor(fetch, pinned, org=org, since=since,
                         max_pending=timedelta(minutes=max_pending_minutes))
    if as_json:
        click.echo(json.dumps({
            "org": report.org, "ok": report.ok, "checked": report.checked, "included": report.included,
            "pending": report.pending, "tree_size": report.tree_size, "unlogged": report.unlogged,
            "faults": report.faults, "signers": dict(report.signers),
        }, indent=2))
    else:
        click.echo(f"{report.org}: {report.checked} document(s) checked against tree size "
                   f"{report.tree_size}: {report.included} in the log, {report.pending} pending")
        for signer, count in sorted(report.signers.items()):
            click.echo(f"  signed by {signer}: {count}")
        for serial in report.unlogged:
            click.echo(click.style(f"UNLOGGED {serial}: in the registry, never in the audit log "
                                   "(signed unseen)", fg="red"), err=True)
        for fault in report.faults:
            click.echo(click.style(f"FAULT {fault}", fg="red"), err=True)
    sys.exit(0 if report.ok else 1)
