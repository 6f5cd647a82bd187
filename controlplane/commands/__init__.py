"""Command groups of the `controlplane` CLI, one module per capability."""
