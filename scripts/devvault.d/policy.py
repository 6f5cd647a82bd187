"""The control plane's OpenBao policies, for scripts/devvault (run with <repo>/.venv/bin/python).

Single source of truth: controlplane.backends.keys, the module that uses the tokens, so the
local OpenBao grants each role exactly what it needs (issue 12, least privilege per process):

  console    obtain one organisation's signing identity at a time (AppRole secret_id), nothing else
  worker     tenant keys, tenant-* policies, AppRoles, tenant KV; signs nothing
  publisher  sign with the trust-root and audit keys only (trust lists, audit checkpoints)

  policy.py roles               the roles, one a line
  policy.py hcl ROLE            the policy of ROLE for mounts transit/, kv/ and approle/
  policy.py policy-name ROLE    its name in OpenBao
  policy.py token-policies ROLE the policies of ROLE's token (besides `default`)
  policy.py check ROLE          read `bao token lookup -format=json` on stdin; exit 0 if the token
                                carries exactly default + token-policies

  policy.py witness-hcl         the `witness` policy of the witness's own OpenBao (controlplane.witness)
  policy.py witness-check       as check, for the witness token: exactly default + witness
"""

import json
import sys

from controlplane.backends.keys import (
    CONSOLE_POLICY,
    PUBLISHER_POLICY,
    RETIRED_KEYS_POLICY,
    WORKER_POLICY,
    console_policy_hcl,
    publisher_policy_hcl,
    worker_policy_hcl,
)
from controlplane.witness.signer import witness_policy_hcl

POLICIES = {
    "console": (CONSOLE_POLICY, console_policy_hcl),
    "worker": (WORKER_POLICY, lambda: worker_policy_hcl(transit_mount="transit", kv_mount="kv")),
    "publisher": (PUBLISHER_POLICY, lambda: publisher_policy_hcl(transit_mount="transit")),
}


def token_policies(role: str) -> list[str]:
    return [POLICIES[role][0], RETIRED_KEYS_POLICY]


def main() -> int:
    what = sys.argv[1]
    role = sys.argv[2] if len(sys.argv) > 2 else ""
    if what == "roles":
        print("\n".join(POLICIES))
        return 0
    if what == "witness-hcl":
        sys.stdout.write(witness_policy_hcl(transit_mount="transit", key="witness"))
        return 0
    if what == "witness-check":
        policies = json.load(sys.stdin)["data"]["policies"]
        return 0 if sorted(policies) == ["default", "witness"] else 1
    if role not in POLICIES:
        return 2
    if what == "hcl":
        sys.stdout.write(POLICIES[role][1]())
    elif what == "policy-name":
        print(POLICIES[role][0])
    elif what == "token-policies":
        print(" ".join(token_policies(role)))
    elif what == "check":
        policies = json.load(sys.stdin)["data"]["policies"]
        return 0 if sorted(policies) == sorted(["default", *token_policies(role)]) else 1
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
