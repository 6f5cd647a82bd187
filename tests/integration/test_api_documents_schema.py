"""schemathesis over the documents operations of /api/v1/openapi.json (issue, read, QR, revoke,
supersede and the public verify), against a real app, database and OpenBao.

Checks are schemathesis' defaults (no 5xx, documented status codes, content types, headers and
bodies, positive data accepted, negative data refused), with a real organisation token that can
sign through its own Vault AppRole. Generation is derandomized and bounded, as in test_api_schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema

from controlplane.backends import Backends
from controlplane.settings import Settings

pytestmark = [pytest.mark.integration]

DOCUMENT = "/api/v1/openapi.json"
GENERATION = hypothesis_settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings fixture, with verification unthrottled: every generated call gets through."""
    return settings.replace(verify_rate_per_minute=0)


def _document_operations(schema: OpenApiSchema) -> list[APIOperation]:
    operations = [result.ok() for result in schema.get_all_operations()]
    mine = [op for op in operations if op.path.startswith(("/api/v1/documents", "/api/v1/verify"))]
    assert len(mine) == 7, [op.label for op in mine]
    return mine


@pytest.fixture
def seeded(client: FlaskClient, backends: Backends, document_org: str,
           api_token_for: Callable[..., str]) -> dict[str, Any]:
    """The organisation's token and two issued documents: path values that exist."""
    token = api_token_for(document_org)
    body = {"documents": [{"doc_type": "letter", "title": f"Letter {n}", "recipient": "Sara Omar",
                           "sha256": f"{n:064x}"} for n in range(2)]}
    issued = client.post("/api/v1/documents", json=body, headers={"Authorization": f"Bearer {token}"})
    assert issued.status_code == 201, issued.get_data(as_text=True)
    first = issued.get_json()["documents"][0]
    return {"api_token": token, "serial": first["serial"], "token": first["token"]}


def _aimed(case: Case, known: dict[str, Any]) -> Case | None:
    params = dict(case.path_parameters or {})
    hits = {name: value for name, value in known.items() if name in params}
    if not hits:
        return None
    return case.operation.Case(
        method=case.method, path_parameters={**params, **hits}, headers=case.headers,
        cookies=case.cookies, query=case.query, body=case.body, media_type=case.media_type,
    )


def _run(operation: APIOperation, check: Callable[[Case], None], failures: list[str]) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @GENERATION
        @given(case=operation.as_strategy(mode))
        def run(case: Case) -> None:
            check(case)

        try:
            run()
        except Unsatisfiable:
            # No negative input exists for some operations (no body, a free-text path value): nothing to test.
            if mode is not GenerationMode.NEGATIVE:
                raise
        except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
            failures.append(f"{operation.label} ({mode.value} data):\n{exc}")


def test_document_operations_conform(app: Flask, seeded: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app)
    auth = {"Authorization": f"Bearer {seeded['api_token']}"}
    known = {"serial": seeded["serial"], "token": seeded["token"]}

    def check(case: Case) -> None:
        case.headers = {**(case.headers or {}), **auth}
        case.call_and_validate(headers=auth)
        aimed = _aimed(case, known)
        if aimed is not None:
            aimed.call_and_validate(headers=auth)

    failures: list[str] = []
    for operation in _document_operations(schema):
        _run(operation, check, failures)
    assert not failures, "\n\n".join(failures)
