"""Every /api/v1 endpoint x every kind of caller x own/other organisation, in one table: allowed
exactly where intended, a reader never writes, and another organisation's data never appears in a
response body or an error."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from controlplane.accounts.models import ApiToken, Role
from controlplane.accounts.service import Actor, start_session
from controlplane.accounts.tokens import KNOWN_SCOPES, OPERATOR_SCOPES, create_token
from controlplane.audit.models import AuditEvent
from controlplane.backends import Backends
from controlplane.errors import PermissionDenied
from controlplane.requests import service
from controlplane.requests.models import RequestStep, ResourceRequest
from controlplane.storage import Database, utcnow
from controlplane.tenancy.service import register_specs
from controlplane.tenancy.spec import TenantSpec
from controlplane.web.console.auth import SESSION_KEY
from tests.integration.api_actors import bearer, make_user, operator_token, org_token, org_token_row

pytestmark = pytest.mark.integration

# Callers (columns). Organisation tokens belong to the own organisation: acting on the other
# organisation's objects is the "org token, other organisation" case.
CALLERS = ("anonymous", "session", "admin", "reader", "operator", "op_reader", "revoked", "expired")
READ_SCOPES = ("tenants:read", "requests:read")
DENIED = ("anonymous", "session", "revoked", "expired")  # 401 everywhere: no valid bearer token

# (method, path, body, {caller: "own/other"}): the status for the own organisation's object, then the
# other's. `{slug}`, `{draft}`, `{submitted}` and `{token}` are fresh objects of that organisation,
# made for each call, so every cell starts from the same state. Callers in DENIED are 401 and left out.
# Decommission comes last: it moves both tenants out of "pending".
TABLE: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = [
    ("GET", "/api/v1/whoami", None,
     {"admin": "200/200", "reader": "200/200", "operator": "200/200", "op_reader": "200/200"}),
    ("GET", "/api/v1/tenants", None,
     {"admin": "200/200", "reader": "200/200", "operator": "200/200", "op_reader": "200/200"}),
    ("GET", "/api/v1/tenants/{slug}", None,
     {"admin": "200/404", "reader": "200/404", "operator": "200/200", "op_reader": "200/200"}),
    ("GET", "/api/v1/tenants/{slug}/events", None,
     {"admin": "200/404", "reader": "200/404", "operator": "200/200", "op_reader": "200/200"}),
    ("POST", "/api/v1/tenants/{slug}/reconcile", None,
     {"admin": "403/403", "reader": "403/403", "operator": "202/202", "op_reader": "403/403"}),
    ("GET", "/api/v1/requests", None,
     {"admin": "200/200", "reader": "200/200", "operator": "200/200", "op_reader": "200/200"}),
    ("GET", "/api/v1/requests?org={org}", None,
     {"admin": "200/200", "reader": "200/200", "operator": "200/200", "op_reader": "200/200"}),
    # an organisation token files for its own organisation only: the body names no organisation
    ("POST", "/api/v1/requests",
     {"kind": "quota_change", "environment": "prod", "quotas": {"compute": {"cores": 40}}, "submit": False},
     {"admin": "201/201", "reader": "403/403", "operator": "403/403", "op_reader": "403/403"}),
    ("GET", "/api/v1/requests/{submitted}", None,
     {"admin": "200/404", "reader": "200/404", "operator": "200/200", "op_reader": "200/200"}),
    ("POST", "/api/v1/requests/{draft}/submit", None,
     {"admin": "200/404", "reader": "403/403", "operator": "403/403", "op_reader": "403/403"}),
    ("POST", "/api/v1/requests/{draft}/withdraw", None,
     {"admin": "200/404", "reader": "403/403", "operator": "403/403", "op_reader": "403/403"}),
    ("POST", "/api/v1/requests/{submitted}/approve", None,
     {"admin": "403/403", "reader": "403/403", "operator": "200/200", "op_reader": "403/403"}),
    ("POST", "/api/v1/requests/{submitted}/reject", {"comment": "not this quarter"},
     {"admin": "403/403", "reader": "403/403", "operator": "200/200", "op_reader": "403/403"}),
    ("GET", "/api/v1/tokens", None,
     {"admin": "200/200", "reader": "403/403", "operator": "200/200", "op_reader": "403/403"}),
    ("POST", "/api/v1/tokens",
     {"name": "made by the API", "org": "{org}", "scopes": ["tenants:read"], "expires_in_days": 7},
     # only an organisation's own admins grant its scopes: an operator token never mints one
     {"admin": "201/403", "reader": "403/403", "operator": "403/403", "op_reader": "403/403"}),
    ("POST", "/api/v1/tokens/{token}/revoke", None,
     {"admin": "200/404", "reader": "403/403", "operator": "200/200", "op_reader": "403/403"}),
    # the audit log's proofs: data-center tokens with audit:read; "any" = let in (the answer itself,
    # e.g. 404 before the first checkpoint, is the audit log's tests' business)
    ("GET", "/api/v1/audit/checkpoint", None,
     {"admin": "403/403", "reader": "403/403", "operator": "any/any", "op_reader": "403/403"}),
    ("GET", "/api/v1/audit/proof/inclusion?leaf_index=0&tree_size=1", None,
     {"admin": "403/403", "reader": "403/403", "operator": "any/any", "op_reader": "403/403"}),
    ("GET", "/api/v1/audit/proof/consistency?first=1&second=1", None,
     {"admin": "403/403", "reader": "403/403", "operator": "any/any", "op_reader": "403/403"}),
    # both tenants are registered, never applied: an operator may ask, the key is not rotated (409)
    ("POST", "/api/v1/tenants/{slug}/keys/rotate", {"reason": "scheduled rotation"},
     {"admin": "403/403", "reader": "403/403", "operator": "409/409", "op_reader": "403/403"}),
    ("POST", "/api/v1/tenants/{slug}/decommission", {"confirm": "{slug}"},
     {"admin": "403/403", "reader": "403/403", "operator": "200/200", "op_reader": "403/403"}),
]
# Routes of /api/v1 this table does not own: the documents API keeps its own matrix.
ELSEWHERE = ("api_documents",)
NOT_ENDPOINTS = ("/api/v1/openapi.json",)  # the public document itself


@dataclass
class World:
    """Two organisations with a tenant each, and a token per caller (own organisation)."""

    own: str
    other: str
    headers: dict[str, dict[str, str]]
    clients: dict[str, FlaskClient]
    make: dict[str, Callable[[str], str]]
    hidden: dict[str, set[str]]  # per organisation: strings of its objects that others must not see


def _writes(database: Database) -> tuple[int, ...]:
    """What a refused call must leave as it was (a refused token's use is audited: those do not count)."""
    with database.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEvent)
                     .where(AuditEvent.action != "api_token:use")) or 0,
            s.scalar(select(func.count()).select_from(ResourceRequest)) or 0,
            s.scalar(select(func.count()).select_from(RequestStep)) or 0,
            s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))) or 0,
        )


@pytest.fixture
def world(app: Flask, database: Database, backends: Backends, write_spec: Callable[..., TenantSpec]) -> World:
    suffix = secrets.token_hex(3)
    own, other = f"t-own-{suffix}", f"t-oth-{suffix}"
    register_specs(database, [write_spec(own, staging=False), write_spec(other, staging=False)],
                   initiator="test")
    operator = make_user(database, f"op-{suffix}", Role.OPERATOR, with_mfa=True)
    auditor = make_user(database, f"aud-{suffix}", Role.AUDITOR, with_mfa=True)
    revoked = org_token(database, own, KNOWN_SCOPES)
    expired = org_token(database, own, KNOWN_SCOPES, expires_at=utcnow() + timedelta(minutes=5))
    with database.transaction() as s:
        s.execute(update(ApiToken).where(ApiToken.prefix == revoked.split("_")[1])
                  .values(revoked_at=utcnow()))
        s.execute(update(ApiToken).where(ApiToken.prefix == expired.split("_")[1])
                  .values(expires_at=utcnow() - timedelta(minutes=1)))
        session_id = start_session(s, auditor)
    headers = {
        "anonymous": {},
        "session": {},
        "admin": bearer(org_token(database, own, KNOWN_SCOPES)),
        "reader": bearer(org_token(database, own, READ_SCOPES)),
        "operator": bearer(operator_token(database, operator, OPERATOR_SCOPES)),
        "op_reader": bearer(operator_token(database, operator, READ_SCOPES)),
        "revoked": bearer(revoked),
        "expired": bearer(expired),
    }
    clients = {caller: app.test_client() for caller in CALLERS}
    with clients["session"].session_transaction() as session:  # a signed-in auditor's cookie, no token
        session[SESSION_KEY] = session_id
    cores = itertools.count(33)
    admins = {org: Actor(0, f"{org}-admin", Role.ORG_ADMIN, org) for org in (own, other)}

    def request_in(org: str, *, submit: bool) -> str:
        view = service.create_request(database, backends, admins[org], org=org, kind="quota_change",
                                      environment="prod", quotas={"compute": {"cores": next(cores)}},
                                      submit=submit)
        return str(view.id)

    def token_of(org: str) -> str:
        return str(org_token_row(database, org, ["tenants:read"], name="to revoke")[0])

    make: dict[str, Callable[[str], str]] = {
        "org": lambda org: org,
        "slug": lambda org: org,
        "draft": lambda org: request_in(org, submit=False),
        "submitted": lambda org: request_in(org, submit=True),
        "token": token_of,
    }
    return World(own, other, headers, clients, make, hidden={own: {own}, other: {other}})


def _fill(template: str, world: World, org: str) -> str:
    for name, make in world.make.items():
        if "{" + name + "}" in template:
            template = template.replace("{" + name + "}", make(org))
    return template


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from _objects(v)


def _check_no_leak(world: World, caller: str, text: str, body: Any) -> None:
    """An organisation token sees nothing of the other organisation: not its slug anywhere, not an
    object of it (any object with an `org` or `slug` names the token's own)."""
    if caller not in ("admin", "reader"):
        return
    for secret in world.hidden[world.other]:
        assert secret not in text, f"{caller} was shown {secret!r}: {text[:300]}"
    for obj in _objects(body):
        assert obj.get("org", world.own) in (world.own, None), obj
        assert obj.get("slug", world.own) == world.own, obj


def test_every_endpoint_for_every_caller_and_organisation(
    app: Flask, database: Database, world: World
) -> None:
    covered = {(method, path.split("?")[0]) for method, path, _body, _expected in TABLE}
    routes = {
        (method, rule.rule.replace("<slug>", "{slug}").replace("<int:request_id>", "{x}")
         .replace("<int:token_id>", "{x}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.rule not in NOT_ENDPOINTS
        and not rule.endpoint.startswith(ELSEWHERE)
        for method in rule.methods or () if method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    }
    normalised = {(m, p.replace("{draft}", "{x}").replace("{submitted}", "{x}").replace("{token}", "{x}"))
                  for m, p in covered}
    assert routes == normalised, f"not in the table: {routes - normalised}; gone: {normalised - routes}"

    failures: list[str] = []
    for method, path, body, expected in TABLE:
        for caller in CALLERS:
            codes = "401/401" if caller in DENIED else expected[caller]
            for org, want in zip((world.own, world.other), codes.split("/"), strict=True):
                url = _fill(path, world, org)
                payload = json.loads(_fill(json.dumps(body), world, org)) if body is not None else None
                before = _writes(database)
                response = world.clients[caller].open(url, method=method, headers=world.headers[caller],
                                                      json=payload)
                text = response.get_data(as_text=True)
                cell = f"{method} {url} as {caller} ({'own' if org == world.own else 'other'})"
                status = response.status_code
                let_in = want == "any" and status not in (401, 403) and status < 500
                if not let_in and str(response.status_code) != want:
                    failures.append(f"{cell}: {response.status_code}, expected {want}: {text[:200]}")
                    continue
                if not response.is_json:
                    failures.append(f"{cell}: not JSON")
                    continue
                if response.status_code >= 400:
                    assert set(response.get_json()) >= {"error", "message"}, cell
                    if _writes(database) != before:
                        failures.append(f"{cell}: refused, yet something was written")
                if response.status_code == 401:
                    assert response.headers["WWW-Authenticate"].startswith("Bearer"), cell
                try:
                    _check_no_leak(world, caller, text, response.get_json())
                except AssertionError as exc:
                    failures.append(f"{cell}: {exc}")
    assert not failures, "\n".join(failures)


def test_what_each_token_lists_is_its_own_or_everything_for_an_operator(world: World) -> None:
    """The 200s above for lists say nothing of their contents: the own organisation's only, or all."""
    world.make["submitted"](world.own)
    world.make["submitted"](world.other)
    def items(path: str, caller: str) -> list[dict[str, Any]]:
        response = world.clients[caller].get(path, headers=world.headers[caller])
        assert response.status_code == 200, (path, caller)
        return list(response.get_json()["items"])

    assert [t["slug"] for t in items("/api/v1/tenants", "admin")] == [world.own]
    assert {r["org"] for r in items("/api/v1/requests", "reader")} == {world.own}
    assert items(f"/api/v1/requests?org={world.other}", "admin") == []
    assert {world.own, world.other} <= {t["slug"] for t in items("/api/v1/tenants", "op_reader")}
    assert {r["org"] for r in items("/api/v1/requests", "op_reader")} == {world.own, world.other}
    narrowed = items(f"/api/v1/requests?org={world.other}", "op_reader")
    assert narrowed and {r["org"] for r in narrowed} == {world.other}
    tokens = items("/api/v1/tokens", "admin")
    assert tokens and {t["org"] for t in tokens} == {world.own}


def test_an_auditor_gets_no_api_token(database: Database) -> None:
    """Auditors read in the console; no token of theirs exists to put in the table."""
    auditor = make_user(database, "aud-no-token", Role.AUDITOR, with_mfa=True)
    with database.transaction() as s, pytest.raises(PermissionDenied):
        create_token(s, auditor, name="audit export", org="health", scopes=["tenants:read"],
                     expires_at=utcnow() + timedelta(days=1), known_orgs=["health"])
