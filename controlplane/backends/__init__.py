"""Backends: the cloud, keys and automation ports with their real adapters, wired from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from controlplane.backends.automation import AutomationBackend
    from controlplane.backends.cloud import CloudBackend
    from controlplane.backends.keys import KeyBackend
    from controlplane.settings import Settings


@dataclass(frozen=True)
class Backends:
    """The three adapters the rest of the control plane talks to; built once per process."""

    cloud: CloudBackend
    keys: KeyBackend
    automation: AutomationBackend
    # False in the console role: `cloud` and `automation` are NotHeld, cloud state comes from what
    # the worker recorded (tenancy.snapshots) and cloud changes are queued for it (tenancy.handoff).
    holds_cloud: bool = True


def load_backends(settings: Settings) -> Backends:
    """Build the adapters this process's role holds (settings.role). SDKs are imported here lazily,
    so importing the package stays cheap, and the console never imports openstacksdk at all."""
    from controlplane.backends.vault import VaultKeys

    if settings.role == "console":
        from controlplane.backends.absent import NotHeld

        return Backends(
            cloud=cast("CloudBackend", NotHeld("openstack", role="console")),
            keys=VaultKeys.from_settings(settings),
            automation=cast("AutomationBackend", NotHeld("ansible", role="console")),
            holds_cloud=False,
        )
    from controlplane.backends.ansible import AnsibleAutomation
    from controlplane.backends.openstack import OpenStackCloud

    return Backends(
        cloud=OpenStackCloud.from_settings(settings),
        keys=VaultKeys.from_settings(settings),
        automation=AnsibleAutomation.from_settings(settings),
    )


def load_publisher_keys(settings: Settings) -> KeyBackend | None:
    """The worker's second Vault identity (policy controlplane-publisher: trust-root and audit keys
    only), for the trust-list publisher and the audit sequencer; None when no such token is set
    (role `full`: the process's own identity publishes)."""
    if not settings.vault_publisher_token:
        return None
    from controlplane.backends.vault import VaultKeys

    return VaultKeys.from_settings(
        settings.replace(vault_token=settings.vault_publisher_token, vault_role_id="", vault_secret_id="")
    )
