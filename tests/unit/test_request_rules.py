"""Request rules, pure: validation, who may act, how many approvals, auto-approval, lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.accounts.models import Role
from controlplane.accounts.service import Actor
from controlplane.errors import Conflict, InvalidInput, InvalidSettings, PermissionDenied
from controlplane.requests.lifecycle import TRANSITIONS, State, check_transition
from controlplane.requests.rules import (
    QUOTA_KEYS,
    Change,
    RequestRules,
    auto_approval,
    check_environment_name,
    check_may_decide,
    check_may_request,
    check_usage,
    diff,
    flatten,
    one_step,
    parse_quotas,
    required_approvals,
    with_update,
)
from controlplane.settings import load_settings
from controlplane.tenancy.spec import ComputeQuota, NetworkQuota, Quotas, VolumeQuota

RULES = RequestRules()
QUOTAS = Quotas(
    ComputeQuota(cores=32, ram_mb=65536, instances=16),
    NetworkQuota(networks=4, subnets=8, ports=128, routers=2, floating_ips=4, security_groups=20),
    VolumeQuota(gigabytes=600, volumes=20, snapshots=20),
)


def actor(role: Role, org: str = "", name: str = "someone") -> Actor:
    return Actor(user_id=1, username=name, role=role, org=org)


# ----------------------------------------------------------------------------- validation
def test_partial_quotas_parse_to_flat_keys() -> None:
    raw = {"compute": {"cores": 48}, "volume": {"gigabytes": 800}}
    parsed = parse_quotas(raw, complete=False, rules=RULES)
    assert parsed == {"compute.cores": 48, "volume.gigabytes": 800}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"compute": {"cores": -1}}, "quotas.compute.cores: -1 is negative"),
        ({"compute": {"cores": 10**9}}, "quotas.compute.cores: 1000000000 is above the ceiling of 4096"),
        ({"compute": {"cores": "48"}}, "quotas.compute.cores: expected a whole number, got '48'"),
        ({"compute": {"cores": True}}, "expected a whole number, got True"),
        ({"compute": {"cores": 4.5}}, "expected a whole number, got 4.5"),
        ({"compute": {"gpus": 4}}, "quotas.compute.gpus: unknown quota (known: cores, ram_mb, instances)"),
        ({"storage": {"gigabytes": 4}}, "quotas.storage: unknown section"),
        ({"compute": 4}, "quotas.compute: expected a mapping"),
        ({}, "quotas: expected a mapping"),
        ([1, 2], "quotas: expected a mapping"),
    ],
)
def test_bad_quotas_are_refused_with_a_clear_message(raw: object, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_quotas(raw, complete=False, rules=RULES)
    assert message in info.value.message


def test_every_problem_is_listed_at_once_and_a_new_environment_needs_every_quota() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_quotas({"compute": {"cores": -1, "ram_mb": "x"}}, complete=True, rules=RULES)
    text = info.value.message
    assert "cores: -1 is negative" in text and "ram_mb: expected a whole number" in text
    assert "quotas.volume.gigabytes: missing" in text
    assert "quotas.compute.cores: missing" not in text  # already reported as negative
    sections = ("compute", "network", "volume")
    full = {s: {k.split(".")[1]: 1 for k in QUOTA_KEYS if k.startswith(s)} for s in sections}
    assert len(parse_quotas(full, complete=True, rules=RULES)) == len(QUOTA_KEYS)


def test_ceilings_are_configurable() -> None:
    rules = RequestRules(ceilings={"compute.cores": 64})
    with pytest.raises(InvalidInput, match="above the ceiling of 64"):
        parse_quotas({"compute": {"cores": 65}}, complete=False, rules=rules)


def test_a_quota_below_usage_is_refused_showing_the_usage() -> None:
    with pytest.raises(InvalidInput) as info:
        check_usage(
            {"compute.cores": 4, "compute.instances": 10}, {"compute.cores": 6, "compute.instances": 2}
        )
    assert info.value.message.endswith("compute.cores: 4 is below current usage of 6")
    check_usage({"compute.cores": 6}, {"compute.cores": 6})  # equal is fine
    check_usage({"compute.cores": 1}, {"compute.cores": None})  # unreported usage: nothing to compare


def test_environment_names() -> None:
    assert check_environment_name("dev", ("prod",)) == "dev"
    for bad in ("Dev", "d", "1dev", "dev-1", "averyveryverylongname", 7):
        with pytest.raises(InvalidInput, match="lowercase letters and digits"):
            check_environment_name(bad, ("prod",))
    with pytest.raises(InvalidInput, match="already exists"):
        check_environment_name("prod", ("prod",))
    with pytest.raises(InvalidInput, match="at most 8 environments"):
        check_environment_name("ninth", tuple(f"env{i}" for i in range(8)))


def test_update_and_diff_keep_the_other_quotas() -> None:
    updated = with_update(QUOTAS, {"compute.cores": 40, "network.floating_ips": 6})
    assert updated.compute.cores == 40 and updated.compute.ram_mb == 65536
    assert updated.network.floating_ips == 6 and updated.volume == QUOTAS.volume
    assert diff(flatten(QUOTAS), {"compute.cores": 40, "compute.instances": 16}) == [
        Change("compute.cores", 32, 40)
    ]


# ----------------------------------------------------------------------------- approvals
@pytest.mark.parametrize(
    ("changes", "needed"),
    [
        ([Change("compute.cores", 32, 64)], 1),  # doubling exactly is not "more than doubling"
        ([Change("compute.cores", 32, 65)], 2),
        ([Change("compute.cores", 32, 8), Change("volume.gigabytes", 600, 1300)], 2),
        ([Change("network.floating_ips", 0, 1)], 2),  # from nothing: unbounded growth
        ([Change("compute.cores", 32, 1)], 1),
    ],
)
def test_large_changes_need_two_operators(changes: list[Change], needed: int) -> None:
    assert required_approvals("quota_change", changes, RULES) == needed


def test_a_new_environment_always_needs_two_and_the_size_is_configurable() -> None:
    assert required_approvals("new_environment", [], RULES) == 2
    strict = RequestRules(large_change_factor=1.5, large_change_approvals=3)
    assert required_approvals("quota_change", [Change("compute.cores", 32, 49)], strict) == 3


def test_one_step_is_a_quarter_rounded_up_and_at_least_one() -> None:
    assert [one_step(n, RULES) for n in (0, 2, 4, 32, 33, 600)] == [1, 1, 1, 8, 9, 150]


def test_decreases_are_auto_approved_unless_switched_off() -> None:
    down = [Change("compute.cores", 32, 16)]
    assert auto_approval("quota_change", down, {}, RULES) == "decrease"
    assert auto_approval("quota_change", down, {}, RequestRules(auto_approve_decreases=False)) is None


def test_one_step_up_is_auto_approved_only_at_high_usage() -> None:
    step = [Change("compute.cores", 32, 40)]
    assert auto_approval("quota_change", step, {"compute.cores": 26}, RULES) == "one step up at high usage"
    assert auto_approval("quota_change", step, {"compute.cores": 25}, RULES) is None  # 78 %
    assert auto_approval("quota_change", step, {"compute.cores": None}, RULES) is None  # unknown
    assert auto_approval("quota_change", step, {}, RULES) is None
    bigger = [Change("compute.cores", 32, 41)]
    assert auto_approval("quota_change", bigger, {"compute.cores": 32}, RULES) is None
    # a decrease elsewhere does not stop it; every increase must qualify
    mixed = [Change("compute.cores", 32, 40), Change("volume.gigabytes", 600, 500)]
    assert auto_approval("quota_change", mixed, {"compute.cores": 30}, RULES) is not None
    two = [Change("compute.cores", 32, 40), Change("compute.instances", 16, 20)]
    assert auto_approval("quota_change", two, {"compute.cores": 30, "compute.instances": 3}, RULES) is None
    no_steps = RequestRules(auto_approve_steps=False)
    assert auto_approval("quota_change", step, {"compute.cores": 30}, no_steps) is None
    assert auto_approval("quota_change", step, {"compute.cores": 20}, RequestRules(step_usage_threshold=0.5))


def test_new_environments_are_never_auto_approved() -> None:
    assert auto_approval("new_environment", [Change("compute.cores", 0, 1)], {}, RULES) is None


# ----------------------------------------------------------------------------- who may act
def test_only_an_org_admin_of_the_org_makes_requests() -> None:
    check_may_request(actor(Role.ORG_ADMIN, "health"), "health")
    with pytest.raises(PermissionDenied, match="your own organisation"):
        check_may_request(actor(Role.ORG_ADMIN, "finance"), "health")
    for role in (Role.ORG_MEMBER, Role.OPERATOR, Role.AUDITOR):
        with pytest.raises(PermissionDenied, match="only an organisation admin"):
            check_may_request(actor(role, "health"), "health")


def test_only_other_operators_decide() -> None:
    check_may_decide(actor(Role.OPERATOR, name="op1"), created_by="user:alice", approvers=set())
    for role in (Role.ORG_ADMIN, Role.ORG_MEMBER, Role.AUDITOR):
        with pytest.raises(PermissionDenied, match="only a data-center operator"):
            check_may_decide(actor(role, "health"), created_by="user:alice", approvers=set())
    with pytest.raises(PermissionDenied, match="separation of duties"):
        check_may_decide(actor(Role.OPERATOR, name="alice"), created_by="user:alice", approvers=set())
    with pytest.raises(PermissionDenied, match="another operator must approve"):
        check_may_decide(actor(Role.OPERATOR, name="op1"), created_by="user:alice", approvers={"user:op1"})


# ----------------------------------------------------------------------------- lifecycle
def test_the_transition_table() -> None:
    allowed = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert allowed == {
        (State.DRAFT, State.SUBMITTED), (State.DRAFT, State.WITHDRAWN),
        (State.SUBMITTED, State.APPROVED), (State.SUBMITTED, State.REJECTED),
        (State.SUBMITTED, State.WITHDRAWN),
        (State.APPROVED, State.APPLIED), (State.APPROVED, State.FAILED),
    }
    for here in State:
        for target in State:
            if (here, target) in allowed:
                assert check_transition(here.value, target) is target
            else:
                with pytest.raises(Conflict, match=f"that is {here.value} cannot become {target.value}"):
                    check_transition(here.value, target)


# ----------------------------------------------------------------------------- rules from settings
def _rules_from(tmp_path: Path, **environ: str) -> RequestRules:
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    settings = load_settings({"instance_path": str(instance)},
                             environ={f"CONTROLPLANE_{k.upper()}": v for k, v in environ.items()})
    return RequestRules.from_settings(settings)


def test_default_settings_give_the_default_rules(tmp_path: Path) -> None:
    assert _rules_from(tmp_path) == RequestRules()


def test_settings_change_the_approval_and_auto_approval_decisions(tmp_path: Path) -> None:
    doubling = [Change("compute.cores", 32, 64)]  # exactly 2x: not large by default
    tripling = [Change("compute.cores", 32, 96)]
    step = [Change("compute.cores", 32, 40)]
    decrease = [Change("compute.cores", 32, 16)]
    high, middling = {"compute.cores": 30}, {"compute.cores": 24}  # 94 % and 75 % of 32
    default = _rules_from(tmp_path)
    assert required_approvals("quota_change", doubling, default) == 1
    assert required_approvals("quota_change", tripling, default) == 2
    assert auto_approval("quota_change", step, high, default) is not None
    assert auto_approval("quota_change", step, middling, default) is None
    assert auto_approval("quota_change", decrease, {}, default) == "decrease"

    strict = _rules_from(tmp_path, request_large_change_factor="1.5", request_large_change_approvals="3",
                         request_auto_approve_decreases="false", request_step_usage_threshold="0.95")
    assert required_approvals("quota_change", doubling, strict) == 3
    assert required_approvals("new_environment", [], strict) == 3
    assert auto_approval("quota_change", step, high, strict) is None  # 94 % is not above 95 %
    assert auto_approval("quota_change", decrease, {}, strict) is None

    lenient = _rules_from(tmp_path, request_step_usage_threshold="0.5", request_step_fraction="0.5")
    assert auto_approval("quota_change", [Change("compute.cores", 32, 48)], middling, lenient) is not None
    assert auto_approval("quota_change", [Change("compute.cores", 32, 48)], middling, default) is None
    off = _rules_from(tmp_path, request_auto_approve_steps="no")
    assert auto_approval("quota_change", step, high, off) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("request_large_change_factor", "1"),
        ("request_large_change_approvals", "0"),
        ("request_large_change_approvals", "9"),
        ("request_step_fraction", "0"),
        ("request_step_fraction", "1.5"),
        ("request_step_usage_threshold", "-0.1"),
        ("request_step_usage_threshold", "80"),
    ],
)
def test_unworkable_rule_settings_are_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        _rules_from(tmp_path, **{name: value})
    assert name in str(refused.value)
