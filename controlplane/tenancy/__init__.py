"""Tenancy: tenant specs, planner, reconciler, leases, drift and decommission."""
