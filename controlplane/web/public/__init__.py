"""Public verification: the page, its JSON twin and the trust list; no sessions, no Vault, no cloud."""
