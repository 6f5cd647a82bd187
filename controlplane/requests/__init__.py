"""Ministry requests (new environment, quota change): lifecycle, approvals, auto-approval rules."""
