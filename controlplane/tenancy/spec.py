"""Tenant specs: the YAML files in tenants/, validated against the published JSON Schema."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

from controlplane.errors import InvalidInput
from controlplane.settings import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "tenants" / "tenant.schema.json"
# Keystone's "admin" role is cloud-wide in practice (context_is_admin), so a ministry's admins get
# "manager" (which implies member and reader), never "admin".
GROUP_ROLES = {"admins": "manager", "members": "member", "readers": "reader"}


@dataclass(frozen=True)
class ComputeQuota:
    cores: int
    ram_mb: int
    instances: int


@dataclass(frozen=True)
class NetworkQuota:
    networks: int
    subnets: int
    ports: int
    routers: int
    floating_ips: int
    security_groups: int
    security_group_rules: int = 100


@dataclass(frozen=True)
class VolumeQuota:
    gigabytes: int
    volumes: int
    snapshots: int


@dataclass(frozen=True)
class Quotas:
    compute: ComputeQuota
    network: NetworkQuota
    volume: VolumeQuota


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    quotas: Quotas
    subnet_prefix: int = 24
    dns_nameservers: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class TenantSpec:
    """What one organisation should have; the reconciler makes the cloud match it."""

    slug: str
    kind: str
    names: dict[str, str]
    environments: tuple[EnvironmentSpec, ...]
    people: dict[str, tuple[str, ...]] = field(default_factory=dict)
    services: tuple[str, ...] = ()
    contact: str = ""
    source: str = ""  # file the spec came from, for messages

    def environment(self, name: str) -> EnvironmentSpec:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)

    def project_name(self, environment: str) -> str:
        return f"{self.slug}-{environment}"

    @property
    def domain_name(self) -> str:
        return self.slug

    def group_name(self, group: str) -> str:
        return f"{self.slug}-{group}"

    def to_document(self) -> dict[str, Any]:
        """The spec back as the YAML/JSON document shape (what the database stores)."""
        doc: dict[str, Any] = {
            "apiVersion": "controlplane/v1",
            "kind": "Tenant",
            "organisation": {"slug": self.slug, "kind": self.kind, "names": dict(self.names)},
            "environments": {
                e.name: {
                    "quotas": asdict(e.quotas),
                    "subnet_prefix": e.subnet_prefix,
                    **({"dns_nameservers": list(e.dns_nameservers)} if e.dns_nameservers else {}),
                    **({"description": e.description} if e.description else {}),
                }
                for e in self.environments
            },
            "people": {k: list(v) for k, v in self.people.items()},
            "services": list(self.services),
        }
        if self.contact:
            doc["organisation"]["contact"] = self.contact
        return doc

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_document(), sort_keys=True).encode()).hexdigest()


class SpecError(InvalidInput):
    """A spec failed validation; each problem names file:line: field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid tenant spec:\n" + "\n".join(f"  {p}" for p in problems))


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _line_index(node: yaml.Node, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], int]:
    """Map every path in a YAML document to the 1-based line where it starts."""
    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            sub = _line_index(value_node, child)
            sub[child] = key_node.start_mark.line + 1  # a field's line is where its key is
            lines.update(sub)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_index(item, (*path, i)))
    return lines


def _locate(lines: dict[tuple[str | int, ...], int], path: Iterable[str | int]) -> int:
    parts = tuple(path)
    while parts not in lines and parts:
        parts = parts[:-1]
    return lines.get(parts, 1)


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path) or "(document)"


def parse_spec(text: str, *, source: str) -> TenantSpec:
    """Parse and validate one spec document; raise SpecError listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise SpecError(
            [f"{source}:{line}: (document): not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    if node is None or not isinstance(data, dict):
        raise SpecError([f"{source}:1: (document): expected a mapping with organisation and environments"])
    lines = _line_index(node)
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for key in extra:
                problems.append(
                    f"{source}:{_locate(lines, [*path, key])}: {_dotted([*path, key])}: unknown field"
                )
            continue
        problems.append(f"{source}:{_locate(lines, path)}: {_dotted(path)}: {error.message}")
    if problems:
        raise SpecError(problems)
    stem = Path(source).stem
    slug = data["organisation"]["slug"]
    if stem != slug and not source.startswith("<"):
        line = _locate(lines, ["organisation", "slug"])
        raise SpecError(
            [f"{source}:{line}: organisation.slug: {slug!r} must match the file name ({stem}.yaml)"]
        )
    return _to_spec(data, source)


def _to_spec(data: dict[str, Any], source: str) -> TenantSpec:
    org = data["organisation"]
    envs = []
    for name, env in sorted(data["environments"].items()):
        q = env["quotas"]
        envs.append(
            EnvironmentSpec(
                name=name,
                quotas=Quotas(
                    ComputeQuota(**q["compute"]), NetworkQuota(**q["network"]), VolumeQuota(**q["volume"])
                ),
                subnet_prefix=env.get("subnet_prefix", 24),
                dns_nameservers=tuple(env.get("dns_nameservers", ())),
                description=env.get("description", ""),
            )
        )
    people = {g: tuple(sorted(data.get("people", {}).get(g, ()))) for g in GROUP_ROLES}
    return TenantSpec(
        slug=org["slug"],
        kind=org["kind"],
        names=dict(org["names"]),
        environments=tuple(envs),
        people=people,
        services=tuple(sorted(data.get("services", ()))),
        contact=org.get("contact", ""),
        source=source,
    )


def load_spec_file(path: Path) -> TenantSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}:1: (document): cannot read: {exc}"]) from None
    return parse_spec(text, source=str(path))


def load_specs(directory: Path) -> list[TenantSpec]:
    """Every tenants/*.yaml, validated together: all problems of all files in one error."""
    if not directory.is_dir():
        raise SpecError([f"{directory}: not a directory of tenant specs"])
    specs, problems = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            specs.append(load_spec_file(path))
        except SpecError as exc:
            problems.extend(exc.problems)
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            problems.append(
                f"{spec.source}:1: organisation.slug: {spec.slug!r} is also used by {seen[spec.slug]}"
            )
        seen[spec.slug] = spec.source
    if problems:
        raise SpecError(problems)
    if not specs:
        raise SpecError([f"{directory}: no *.yaml tenant specs found"])
    return specs


def spec_from_document(doc: dict[str, Any], *, source: str, validate: bool = True) -> TenantSpec:
    """Rebuild a spec from its document. Stored specs were validated when they were accepted, so
    readers pass validate=False and skip the schema (pages read them on every view)."""
    if not validate:
        return _to_spec(doc, source)
    return parse_spec(json.dumps(doc), source=source)
