"""Documents: signed records (CBOR claims in COSE_Sign1), their QR tokens, verification and trust list."""
