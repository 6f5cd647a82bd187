"""Shared pytest wiring: fixture modules for the real services live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.openstack",
    "tests.fixtures.vault",
    "tests.fixtures.ansible",
    "tests.fixtures.app",
    "tests.fixtures.tenancy",
    "tests.fixtures.browser",
    "tests.fixtures.documents",
    "tests.fixtures.witness",
]
