"""Backends: the cloud, keys and automation ports with their real adapters, wired from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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


def load_backends(settings: Settings) -> Backends:
    """Build the real adapters. SDKs are imported here lazily, so importing the package stays cheap."""
    from controlplane.backends.ansible import AnsibleAutomation
    from controlplane.backends.openstack import OpenStackCloud
    from controlplane.backends.vault import VaultKeys

    return Backends(
        cloud=OpenStackCloud.from_settings(settings),
        keys=VaultKeys.from_settings(settings),
        automation=AnsibleAutomation.from_settings(settings),
    )
