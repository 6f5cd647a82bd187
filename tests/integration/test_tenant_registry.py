"""The registry keeps approved requests from being silently undone by an older spec file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from controlplane.errors import Conflict
from controlplane.storage import Database
from controlplane.tenancy.registry import get_tenant, register_spec
from controlplane.tenancy.spec import TenantSpec


def test_a_file_cannot_silently_undo_an_approved_request(
        database: Database, tenant_slug: str, write_spec: Callable[..., TenantSpec]) -> None:
    from_file = write_spec(tenant_slug, staging=False)
    from_request = replace(write_spec(tenant_slug, staging=False, cores=48), source="<request:7>")
    with database.transaction() as s:
        assert register_spec(s, from_file, initiator="test").change == "created"
        assert register_spec(s, from_request, initiator="test").generation == 2
    with pytest.raises(Conflict, match="approved request request:7") as info, database.transaction() as s:
        register_spec(s, from_file, initiator="test")
    assert info.value.hint and f"controlplane tenants show {tenant_slug}" in info.value.hint
    with database.transaction() as s:
        assert get_tenant(s, tenant_slug).generation == 2, "nothing changed"
        assert register_spec(s, from_file, initiator="test", force=True).generation == 3
