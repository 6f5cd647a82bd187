"""schemathesis over the documents operations of /api/v1/openapi.json (issue, read, QR, revoke,
supersede and the public verify), against a real app, database and OpenBao.

Checks are schemathesis' defaults (no 5xx, documented status codes, content types, headers and
bodies, positive data accepted, negative data refused), with a real organisation token that can
sign through its own Vault AppRole. Generation is derandomized and bounded (schema_checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.schemas import OpenApiSchema

from controlplane.backends import Backends
from controlplane.settings import Settings
from tests.integration.schema_checks import DOCUMENT, bounded, call_with_token, failures_of

pytestmark = [pytest.mark.integration]

@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings fixture, with verification unthrottled: every generated call gets through."""
    return settings.replace(verify_rate_per_minute=0)


def _document_operations(schema: OpenApiSchema) -> list[APIOperation]:
    operations = [result.ok() for result in schema.get_all_operations()]
    mine = [op for op in operations if op.path.startswith(("/api/v1/documents", "/api/v1/verify"))]
    assert len(mine) == 8, [op.label for op in mine]
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


def test_document_operations_conform(app: Flask, seeded: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app)
    auth = {"Authorization": f"Bearer {seeded['api_token']}"}
    known = {"serial": seeded["serial"], "token": seeded["token"]}

    failures = failures_of(_document_operations(schema), lambda case: call_with_token(case, auth, known),
                           bounded(max_examples=25))
    assert not failures, "\n\n".join(failures)
