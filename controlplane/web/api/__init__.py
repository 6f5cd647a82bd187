"""Bearer-token JSON API under /api/v1 and its OpenAPI description; no cookie session authenticates here."""
