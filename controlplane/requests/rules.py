"""Pure request rules: payload validation, who may act, how many approvals, when to auto-approve."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.errors import InvalidInput, PermissionDenied
from controlplane.settings import Settings
from controlplane.tenancy.spec import ComputeQuota, NetworkQuota, Quotas, VolumeQuota

SECTIONS: dict[str, type[ComputeQuota | NetworkQuota | VolumeQuota]] = {
    "compute": ComputeQuota,
    "network": NetworkQuota,
    "volume": VolumeQuota,
}
# Flat quota keys ("compute.cores"): the one vocabulary of messages, usage and rules.
QUOTA_KEYS: tuple[str, ...] = tuple(f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls))
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")
MAX_ENVIRONMENTS = 8  # tenant.schema.json: environments.maxProperties
MAX_TEXT = 500  # comments and descriptions

# Far above anything one ministry environment could need; a value above is a typo or an attack.
DEFAULT_CEILINGS: dict[str, int] = {
    "compute.cores": 4096,
    "compute.ram_mb": 16 * 1024 * 1024,  # 16 TiB
    "compute.instances": 2000,
    "network.networks": 200,
    "network.subnets": 400,
    "network.ports": 20000,
    "network.routers": 100,
    "network.floating_ips": 1000,
    "network.security_groups": 1000,
    "network.security_group_rules": 20000,
    "volume.gigabytes": 1_000_000,
    "volume.volumes": 10000,
    "volume.snapshots": 10000,
}


@dataclass(frozen=True)
class RequestRules:
    """The configurable part of the rules; the defaults are what the data center runs with.

    - A quota change is *large* when any quota grows to more than ``large_change_factor`` times
      its current limit (a limit of 0 growing at all is large); a new environment is always large.
      Large changes need ``large_change_approvals`` distinct operators, others one.
    - Auto-approval: a change with no increase is approved at once (``auto_approve_decreases``).
      A change whose every increase is at most *one step* is approved at once when each increased
      quota's usage is above ``step_usage_threshold`` of its current limit. One step of a limit L
      is ``max(1, ceil(L * step_fraction))``: with the default 25 %, 32 cores → 40, 2 routers → 3.
    """

    large_change_factor: float = 2.0
    large_change_approvals: int = 2
    auto_approve_decreases: bool = True
    auto_approve_steps: bool = True
    step_fraction: float = 0.25
    step_usage_threshold: float = 0.80
    ceilings: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CEILINGS))

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestRules:
        """The rules as this deployment configures them (settings.request_*, validated there)."""
        return cls(
            large_change_factor=settings.request_large_change_factor,
            large_change_approvals=settings.request_large_change_approvals,
            auto_approve_decreases=settings.request_auto_approve_decreases,
            auto_approve_steps=settings.request_auto_approve_steps,
            step_fraction=settings.request_step_fraction,
            step_usage_threshold=settings.request_step_usage_threshold,
        )


@dataclass(frozen=True)
class Change:
    key: str
    old: int
    new: int

    @property
    def increase(self) -> bool:
        return self.new > self.old


# ----------------------------------------------------------------------------- quotas
def flatten(quotas: Quotas) -> dict[str, int]:
    return {
        f"{section}.{f.name}": getattr(getattr(quotas, section), f.name)
        for section in SECTIONS
        for f in fields(SECTIONS[section])
    }


def with_update(quotas: Quotas, update: Mapping[str, int]) -> Quotas:
    """`quotas` with the flat-keyed values of `update` replacing theirs."""
    sections: dict[str, Any] = {}
    for section in SECTIONS:
        values = {k.split(".", 1)[1]: v for k, v in update.items() if k.startswith(f"{section}.")}
        sections[section] = replace(getattr(quotas, section), **values)
    return Quotas(**sections)


def parse_quotas(raw: object, *, complete: bool, rules: RequestRules) -> dict[str, int]:
    """Validate a nested quota mapping ({"compute": {"cores": 48}}) into flat keys; every problem
    is listed in one InvalidInput. `complete` requires every quota (a new environment)."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput("quotas: expected a mapping of compute, network and/or volume quotas")
    problems: list[str] = []
    flat: dict[str, int] = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            problems.append(f"quotas.{section}: unknown section (expected compute, network or volume)")
            continue
        if not isinstance(values, Mapping):
            problems.append(f"quotas.{section}: expected a mapping of quota names to numbers")
            continue
        for name, value in values.items():
            key = f"{section}.{name}"
            if key not in QUOTA_KEYS:
                known = ", ".join(k.split(".", 1)[1] for k in QUOTA_KEYS if k.startswith(f"{section}."))
                problems.append(f"quotas.{key}: unknown quota (known: {known})")
            elif isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"quotas.{key}: expected a whole number, got {value!r}"[:200])
            elif value < 0:
                problems.append(f"quotas.{key}: {value} is negative")
            elif value > rules.ceilings.get(key, 1_000_000):
                problems.append(
                    f"quotas.{key}: {value} is above the ceiling of {rules.ceilings.get(key, 1_000_000)}"
                )
            else:
                flat[key] = value
    if complete:
        reported = {p.split(":", 1)[0] for p in problems}
        missing = [k for k in QUOTA_KEYS if k not in flat and f"quotas.{k}" not in reported]
        problems.extend(f"quotas.{key}: missing" for key in missing)
    if problems:
        raise InvalidInput("invalid quotas: " + "; ".join(problems))
    return flat


def diff(current: Mapping[str, int], update: Mapping[str, int]) -> list[Change]:
    """The quotas `update` changes, in QUOTA_KEYS order."""
    return [Change(k, current[k], update[k]) for k in QUOTA_KEYS if k in update and update[k] != current[k]]


def check_usage(values: Mapping[str, int], usage: Mapping[str, int | None]) -> None:
    """Refuse limits below what the environment uses now, showing the usage."""
    problems = [
        f"{key}: {value} is below current usage of {usage[key]}"
        for key, value in values.items()
        if usage.get(key) is not None and value < (usage[key] or 0)
    ]
    if problems:
        raise InvalidInput(
            "a quota cannot be set below what is in use: " + "; ".join(problems),
            hint="free the resources first, or ask for a limit at or above the usage",
        )


def check_text(label: str, text: str) -> str:
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{label}: at most {MAX_TEXT} characters, got {len(text)}")
    return text


def check_environment_name(name: object, existing: tuple[str, ...]) -> str:
    if not isinstance(name, str) or not ENVIRONMENT_NAME.match(name):
        raise InvalidInput(
            f"environment name {str(name)[:40]!r}: "
            "use 2-12 lowercase letters and digits, starting with a letter"
        )
    if name in existing:
        raise InvalidInput(f"environment {name!r} already exists; request a quota change for it instead")
    if len(existing) >= MAX_ENVIRONMENTS:
        raise InvalidInput(f"an organisation has at most {MAX_ENVIRONMENTS} environments")
    return name


# ----------------------------------------------------------------------------- approvals
def required_approvals(kind: str, changes: list[Change], rules: RequestRules) -> int:
    """How many distinct operators must approve: more for a new environment or a large change."""
    if kind == "new_environment":
        return rules.large_change_approvals
    for c in changes:
        if c.increase and (c.old == 0 or c.new > c.old * rules.large_change_factor):
            return rules.large_change_approvals
    return 1


def one_step(limit: int, rules: RequestRules) -> int:
    return max(1, math.ceil(limit * rules.step_fraction))


def auto_approval(
    kind: str, changes: list[Change], usage: Mapping[str, int | None], rules: RequestRules
) -> str | None:
    """The rule that approves this request without an operator, or None if an operator must."""
    if kind != "quota_change" or not changes:
        return None
    increases = [c for c in changes if c.increase]
    if not increases:
        return "decrease" if rules.auto_approve_decreases else None
    if not rules.auto_approve_steps:
        return None
    for c in increases:
        used = usage.get(c.key)
        if c.new > c.old + one_step(c.old, rules) or used is None or c.old <= 0:
            return None
        if used <= c.old * rules.step_usage_threshold:
            return None
    return "one step up at high usage"


# ----------------------------------------------------------------------------- who may act
def check_may_request(actor: Actor, org: str) -> None:
    """Only an org admin of `org` creates, submits or withdraws that organisation's requests."""
    if actor.role is not Role.ORG_ADMIN:
        raise PermissionDenied("only an organisation admin can make or change requests")
    if actor.org != org:
        raise PermissionDenied("you can only make requests for your own organisation")


def check_may_decide(actor: Actor, *, created_by: str, approvers: set[str], filer_person: int | None = None,
                     approver_people: frozenset[int] = frozenset()) -> None:
    """Only operators approve or reject; never their own request, never twice the same one. "Own" and
    "twice" compare the PEOPLE behind sessions and tokens (a token counts as the person who minted
    it), whatever channel each used, as well as the names recorded."""
    if actor.role is not Role.OPERATOR:
        raise PermissionDenied("only a data-center operator can approve or reject requests")
    person = actor.person_id
    if person is None:
        raise PermissionDenied("an approval needs a person: sign in, or use an operator token of your own")
    if actor.audit_name == created_by or person == filer_person:
        raise PermissionDenied("nobody may approve or reject their own request (separation of duties)",
                               hint="the request was filed by you, or through a token you minted")
    if actor.audit_name in approvers or person in approver_people:
        raise PermissionDenied("you have already approved this request; another operator must approve it")
