"""The witness: an independent service (the security agency's) that co-signs the audit log's
checkpoints over C2SP tlog-witness, with its own key in its own OpenBao and its own record of the
last checkpoint it co-signed per log, in its state directory. It imports nothing of the control
plane's database, settings or Vault adapter."""
