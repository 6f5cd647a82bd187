"""Tenant specs: the shipped examples are valid, and errors name file:line: field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import Conflict
from controlplane.settings import REPO_ROOT
from controlplane.tenancy.addressing import next_free_subnet
from controlplane.tenancy.phases import TRANSITIONS, Phase, check_transition
from controlplane.tenancy.spec import SpecError, load_specs, parse_spec

TENANTS = REPO_ROOT / "tenants"


def test_shipped_examples_cover_the_government() -> None:
    specs = {s.slug: s for s in load_specs(TENANTS)}
    for slug in (
        "cabinet",
        "health",
        "interior",
        "education",
        "finance",
        "planning",
        "gov-baghdad",
        "gov-basra",
        "krg-representation",
        "shared-verification",
        "shared-mail",
    ):
        assert slug in specs, slug
    assert {s.kind for s in specs.values()} == {"ministry", "governorate", "agency", "shared-service"}
    for spec in specs.values():
        assert set(spec.names) == {"ar", "ku", "en"}


def _health_text() -> str:
    return (TENANTS / "health.yaml").read_text(encoding="utf-8")


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    text = (
        _health_text()
        .replace("cores: 32", "cores: -5")
        .replace("  kind: ministry", "  kind: ministry\n  colour: red")
    )
    (tmp_path / "health.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    problems = info.value.problems
    lines = text.splitlines()
    cores_line = next(i for i, line in enumerate(lines, 1) if "cores: -5" in line)
    colour_line = next(i for i, line in enumerate(lines, 1) if "colour" in line)
    assert (
        f"{tmp_path / 'health.yaml'}:{cores_line}: environments.prod.quotas.compute.cores: "
        "-5 is less than the minimum of 0"
        in problems
    )
    assert f"{tmp_path / 'health.yaml'}:{colour_line}: organisation.colour: unknown field" in problems


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda t: t.replace("slug: health", "slug: Health!"), "organisation.slug"),
        (lambda t: t.replace("ram_mb: 65536", "ram_mb: lots"), "environments.prod.quotas.compute.ram_mb"),
        (lambda t: t.replace("kind: ministry", "kind: company"), "organisation.kind"),
        (lambda t: t.replace("    en: Ministry of Health\n", ""), "organisation.names"),
        (lambda t: t + "extra: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_specs_are_refused(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as info:
        parse_spec(mutate(_health_text()), source="health.yaml")
    assert expected in info.value.message


def test_slug_must_match_file_and_be_unique(tmp_path: Path) -> None:
    (tmp_path / "health.yaml").write_text(_health_text(), encoding="utf-8")
    (tmp_path / "health2.yaml").write_text(_health_text(), encoding="utf-8")
    with pytest.raises(SpecError, match="must match the file name"):
        load_specs(tmp_path)


def test_address_plan_never_overlaps() -> None:
    taken = ["10.64.0.0/24", "10.64.2.0/23"]
    assert next_free_subnet("10.64.0.0/12", 24, taken) == "10.64.1.0/24"
    assert next_free_subnet("10.64.0.0/12", 22, taken) == "10.64.4.0/22"
    assert next_free_subnet("10.64.0.0/12", 24, [*taken, "10.64.1.0/24"]) == "10.64.4.0/24"
    with pytest.raises(Conflict, match="no free"):
        next_free_subnet("10.64.0.0/24", 24, ["10.64.0.0/24"])


def test_phase_table_allows_only_listed_transitions() -> None:
    assert check_transition("ready", Phase.UPDATING) is Phase.UPDATING
    with pytest.raises(Conflict, match="cannot move to 'deleted'"):
        check_transition("ready", Phase.DELETED)
    assert TRANSITIONS[Phase.DELETED] == frozenset()
    # decommission only moves forward
    assert Phase.READY not in TRANSITIONS[Phase.ARCHIVED]
