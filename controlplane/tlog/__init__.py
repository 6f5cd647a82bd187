"""Transparency-log primitives shared by the audit log and the witness: RFC 9162 Merkle hashing and
the C2SP formats (signed-note, tlog-checkpoint, tlog-cosignature, tlog-witness). Pure code: no
database, no settings, no Vault."""
