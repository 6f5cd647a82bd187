"""National data-center control plane: tenant vending on OpenStack, keys in Vault, shared services."""

__version__ = "0.1.0"
