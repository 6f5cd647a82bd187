"""The pure parts of the Ansible adapter: which extravars are secret, and scrubbing them out."""

from __future__ import annotations

import json

from controlplane.backends.ansible import secret_extravar_values, secret_scrubber


def test_secret_looking_names_at_any_depth() -> None:
    extravars = {
        "tenant_id": "min-health",
        "db_password": "pa55word",
        "database": {"admin_passphrase": "correct horse", "host": "db.internal"},
        "api_keys": ["key-one-123", "key-two-456"],
        "vault": {"secret_id": 12345678, "role_id": "role-abc"},
        "token_ttl": "1h",  # too short to be worth hiding: 4 characters at least
        "credentials": {"nested": {"anything": "deep-value"}},
    }

    assert secret_extravar_values(extravars) == {
        "pa55word",
        "correct horse",
        "key-one-123",
        "key-two-456",
        "12345678",
        "deep-value",
    }


def test_scrubber_replaces_raw_and_json_escaped_forms() -> None:
    secret = 'pa"ss\\wörd'
    scrub = secret_scrubber({secret, "short-1234"})
    text = f"plain {secret} and json {json.dumps({'p': secret})} and short-1234 and short-12345"

    cleaned = scrub(text)

    assert secret not in cleaned and json.dumps(secret)[1:-1] not in cleaned
    assert cleaned.count("***") == 4
    assert cleaned.endswith("*** and ***5")  # not a word filter: the value itself is what goes


def test_scrubber_without_secrets_changes_nothing() -> None:
    assert secret_scrubber(set())("nothing to hide") == "nothing to hide"
