"""The long help texts of ``import`` and ``inventory`` (their ``--help`` descriptions)."""

from __future__ import annotations

IMPORT_HELP = """\
Bring the sub-accounts and keys that exist at Bitget but that the plan does not name
(made in Bitget's web UI, or by another tool) into the plan, the vault and the state.

Every master the plan names is read whole, through its mode's API family. Each
sub-account and key the plan lacks becomes a plan entry that reproduces it (labels,
permissions, whitelist, permission type), so that `bitget-keys plan` shows no change
once the entries are in the plan: printed as TOML with a comment saying where each
goes, or with --out FILE added to the plan's own text, each at the end of the table it
belongs to (comments and layout kept; written atomically; the plan itself or a new
file). Bitget masks a unified sub-account's username: its entry holds a stand-in that
begins with the letters Bitget shows, marked to be replaced with the real name.

A key made elsewhere has a secret no one here holds: each is recorded in the vault as
"secret not held" (and in the state file); `bitget-keys rotate` replaces it with a key
whose secret the vault holds. What can't be planned (no key, a label used twice, a
permission with no plan name) is named, with why, and left out. A second import adds
nothing twice.
"""

INVENTORY_HELP = """\
List every sub-account and key of the plan's masters, planned or not: permissions,
whitelist, permission type, API family (v2 classic, v3 unified), frozen, revoked or
neutralised, age, whether the vault holds the secret and the vault's stage for it.

A key's age counts from its creation where Bitget tells it (unified keys), else from
the first time this tool listed it (kept in the state file; shown "first seen").
Findings: a withdraw permission, an empty whitelist, older than --max-age, a secret
the vault does not hold, a key a rotation replaced still working after its grace.
Exit 6 when there is any finding, 0 when there is none.

The vault is read when its key is at hand (--vault-key-file, $BITGET_KEYS_VAULT_KEY,
$BITGET_KEYS_VAULT_KEY_FILE, or asked on a terminal); with --no-vault, or no key off a
terminal, whether each secret is held is "unknown" (never a finding).
"""
