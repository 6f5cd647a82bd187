"""People-facing console: pages behind a cookie session (sign-in, MFA, fresh authentication)."""
