"""
A key's life after its first day: rotation (and, beside it, import and inventory).

These modules sit on top of provisioning: they read plans, write the vault through the
`bitget_keys.provision.ledger.Ledger`, and keep their own tables in apply's state file.
"""
