"""
A key's life after its first day: rotation, import and inventory.

- `rotation` (with `rotation_journal`, `rotation_steps`, `rotation_revoke`,
  `rotation_run`, `rotation_ops`): replacing a key without downtime, one journaled
  state machine per key (create, verify by signing, promote, revoke after a grace).
- `survey`: reading every sub-account and key of a plan's masters.
- `adopt` and `plan_text`: bringing keys made elsewhere into the plan (as plan text,
  keeping the file's comments) and the vault (as keys whose secret is not held).
- `inventory` and `first_seen`: every key with its rights, age and policy findings.

These modules sit on top of provisioning: they read plans, write the vault through the
`bitget_keys.provision.ledger.Ledger`, and keep their own tables in apply's state file.
"""
