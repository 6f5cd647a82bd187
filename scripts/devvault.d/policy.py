"""The control plane's OpenBao policy, for scripts/devvault (run with <repo>/.venv/bin/python).

Single source of truth: controlplane.backends.keys, the module that uses the token, so the
local OpenBao grants exactly what the adapter needs (least privilege: signing keys, tenant-*
policies and the retired-keys policy, AppRoles, KV; no mounts, no tokens, no audit).

  policy.py hcl            the `controlplane` policy for mounts transit/ and kv/
  policy.py token-policies the policies of the control plane's token (besides `default`)
  policy.py check          read `bao token lookup -format=json` on stdin; exit 0 if the token
                           carries exactly default + token-policies
  policy.py witness-hcl    the `witness` policy of the witness's own OpenBao (controlplane.witness)
  policy.py witness-check  as check, for the witness token: exactly default + witness
"""

import json
import sys

from controlplane.backends.keys import RETIRED_KEYS_POLICY, controlplane_policy_hcl
from controlplane.witness.signer import witness_policy_hcl

TOKEN_POLICIES = ["controlplane", RETIRED_KEYS_POLICY]


def main() -> int:
    what = sys.argv[1]
    if what == "hcl":
        sys.stdout.write(controlplane_policy_hcl(transit_mount="transit", kv_mount="kv"))
    elif what == "witness-hcl":
        sys.stdout.write(witness_policy_hcl(transit_mount="transit", key="witness"))
    elif what == "witness-check":
        policies = json.load(sys.stdin)["data"]["policies"]
        return 0 if sorted(policies) == ["default", "witness"] else 1
    elif what == "token-policies":
        print(" ".join(TOKEN_POLICIES))
    elif what == "check":
        policies = json.load(sys.stdin)["data"]["policies"]
        return 0 if sorted(policies) == sorted(["default", *TOKEN_POLICIES]) else 1
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
