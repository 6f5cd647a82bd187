"""The auditor console: read-only pages over the audit log of every organisation (search, timeline,
per-organisation activity, approval and key histories, document verification statistics, exports).

Auditors only: operators are the people being audited and ministries see only themselves, so
neither reads this console. Every route is GET; an export is itself recorded as an audit event
(`audit:console:export`, who and which filter), as agencies expect of bulk reads."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from werkzeug.wrappers import Response as WerkzeugResponse

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.audit import AuditAction, record_event
from controlplane.audit import queries as q
from controlplane.errors import InvalidInput
from controlplane.metrics import AUDIT_EXPORTS_TOTAL
from controlplane.web.console.audit_chart import build_chart
from controlplane.web.console.auth import login_required, require_role, signed_in_actor
from controlplane.web.services import services

bp = Blueprint("audit", __name__, url_prefix="/audit")

P = ParamSpec("P")
R = TypeVar("R")
MAX_ID = 2**63 - 1
EXPORT_MAX_ROWS = 1_000_000  # a bigger bulk read goes through `controlplane audit export`
CSV_FIELDS = ("id", "event_uuid", "leaf_index", "occurred_at", "action", "outcome", "initiator", "target",
              "observer", "org", "detail")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def auditor_only(view: Callable[P, R]) -> Callable[P, R | WerkzeugResponse]:
    """Signed in (else the sign-in page), then the auditor role (else 403)."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        require_role(Role.AUDITOR)
        return view(*args, **kwargs)

    return login_required(wrapped)


def _actor() -> Actor:
    return signed_in_actor()


def _now() -> datetime:
    return datetime.now(UTC)


def _before() -> int | None:
    raw = request.args.get("before", "")
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise InvalidInput("before: expected an event number")
    return int(raw)


def _window(flt: q.EventFilter) -> tuple[datetime, datetime]:
    return flt.window(_now())


@bp.get("/")
@auditor_only
def events() -> str:
    flt = q.EventFilter.parse(request.args)
    with services().database.transaction() as s:
        page = q.search_events(s, flt, before=_before())
        timeline = q.event_timeline(s, flt, now=_now())
    return render_template("audit/events.html", page=page, flt=flt, args=flt.as_args(),
                           chart=build_chart(timeline), outcomes=q.OUTCOMES, before=_before())


@bp.get("/events/<int:event_id>")
@auditor_only
def event(event_id: int) -> str:
    if event_id > MAX_ID:
        abort(404)
    with services().database.transaction() as s:
        row = q.get_event(s, event_id)
    if row is None:
        abort(404)
    return render_template("audit/event.html", e=row,
                           detail=json.dumps(row.detail, indent=2, ensure_ascii=False, sort_keys=True))


@bp.get("/tenants")
@auditor_only
def tenants() -> str:
    flt = q.EventFilter.parse(request.args)
    start, end = _window(flt)
    with services().database.transaction() as s:
        rows = q.tenant_activity(s, start, end)
    return render_template("audit/tenants.html", rows=rows, start=start, end=end, args=flt.as_args())


def _history(template: str, actions: tuple[str, ...]) -> str:
    flt = q.EventFilter.parse(request.args)
    with services().database.transaction() as s:
        page = q.search_events(s, flt, before=_before(), actions=actions)
    return render_template(template, page=page, flt=flt, args=flt.as_args(), actions=actions,
                           outcomes=q.OUTCOMES)


@bp.get("/approvals")
@auditor_only
def approvals() -> str:
    return _history("audit/approvals.html", q.APPROVAL_ACTIONS)


@bp.get("/keys")
@auditor_only
def keys() -> str:
    return _history("audit/keys.html", q.KEY_ACTIONS)


@bp.get("/documents")
@auditor_only
def documents() -> str:
    flt = q.EventFilter.parse(request.args)
    start, end = _window(flt)
    with services().database.transaction() as s:
        stats = q.verification_stats(s, start, end)
    chart = build_chart(stats.timeline)
    return render_template("audit/documents.html", stats=stats, chart=chart, args=flt.as_args())


# ---------------------------------------------------------------------------- exports
def _record_export(fmt: str, flt: q.EventFilter) -> None:
    actor = _actor()
    with services().database.transaction() as s:
        record_event(s, action=AuditAction.AUDIT_CONSOLE_EXPORT, initiator=actor.audit_name,
                     target="audit:events", detail={"format": fmt, "filter": flt.as_args()})
    AUDIT_EXPORTS_TOTAL.labels(fmt).inc()


def _cell(value: str) -> str:
    """Spreadsheets run a cell that starts like a formula: an initiator typed at the sign-in page
    could otherwise become one in the auditor's spreadsheet."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_rows(flt: q.EventFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for n, row in enumerate(q.iter_events(services().database.transaction, flt, max_rows=EXPORT_MAX_ROWS)):
        leaf = "" if row.leaf_index is None else row.leaf_index
        writer.writerow([row.id, row.event_uuid, leaf, row.occurred_at.isoformat(), *(_cell(v) for v in (
            row.action, row.outcome, row.initiator, row.target, row.observer, row.org)),
            _cell(json.dumps(row.detail, ensure_ascii=False, sort_keys=True))])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_rows(flt: q.EventFilter) -> Iterator[str]:
    head = {"exported_at": _now().isoformat(), "filter": flt.as_args(), "limit": EXPORT_MAX_ROWS}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "events": ['
    for n, row in enumerate(q.iter_events(services().database.transaction, flt, max_rows=EXPORT_MAX_ROWS)):
        yield ("," if n else "") + "\n" + json.dumps(row.to_json(), ensure_ascii=False, sort_keys=True)
    yield "\n]}\n"


def _download(body: Iterator[str], fmt: str, mimetype: str) -> Response:
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    return Response(stream_with_context(body), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="audit-events-{stamp}.{fmt}"',
        "Cache-Control": "no-store",
    })


@bp.get("/export.csv")
@auditor_only
def export_csv() -> Response:
    flt = q.EventFilter.parse(request.args)
    _record_export("csv", flt)
    return _download(_csv_rows(flt), "csv", "text/csv")


@bp.get("/export.json")
@auditor_only
def export_json() -> Response:
    flt = q.EventFilter.parse(request.args)
    _record_export("json", flt)
    return _download(_json_rows(flt), "json", "application/json")
