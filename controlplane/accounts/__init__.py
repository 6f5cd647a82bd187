"""Accounts: people, roles, console sessions and the bootstrap operator."""
