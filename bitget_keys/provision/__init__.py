"""
Declarative provisioning: make Bitget's live state match a plan, and keep every secret.

The modules, in the order a run uses them:

- `plan`: the plan file, read and checked whole before anything is sent; sharding.
  `plan_modes`: its rules for classic and unified masters (`PlanMode`), and how its
  values map to the unified (v3) requests.
- `diff`: the pure difference between a plan and live state; `drift` its part about
  keys that exist: changed settings, frozen state, and what to revoke (``state =
  "absent"``, ``apply --prune``).
- `preview`: what apply would do, as `plan`, apply's confirmation and the live display
  show it.
- `live`: reading what exists (the list endpoints), and tracking it during a run.
- `apply`: the rounds that create what is missing, concurrently per master account,
  and stop without abandoning an answer (`bitget_keys.DispatchGate`); one account's
  rounds are `account_run`, its create flows `flows`, what it reports about its items
  `account_report`, and what a failed request means `outcomes`; modifies, freezes and
  revokes are `revoke_flows`, through `key_ops` (what can be done to a live key in
  each family: modify, revoke, freeze, verify by signing).
- `results`: what a run says about each item (`ItemResult`, `ItemKey`, `Status`).
- `ledger`: where a run writes what happened: secrets to the vault, the instant they
  arrive, intents and outcomes to the journal; secrets the vault cannot take are held.
- `vault`: the encrypted, append-only file of created keys and their secrets; its
  format (`vault_format`), how its key is derived from the passphrase (`vault_kdf`),
  what it holds and reading it finds (`vault_records`), sealing and scanning its record
  lines (`vault_codec`), and its locked, fsynced file operations (`vault_files`).
- `journal`: the SQLite record of intents and outcomes (never a secret).
- `audit_log`: the append-only, hash-chained record of lifecycle operations (its line
  format and verification: `audit_chain`).
- `durations`: ``90d``-style durations (``rotate_after``, ``inventory --max-age``).
- `lock` and `files`: one run per vault and state file; file checks.
- `progress`: showing a run's results as they come.

The command line (`bitget_keys.cli`) is their main user; their API may still change.
"""

from bitget_keys.provision.plan_modes import PlanMode

__all__ = ["PlanMode"]
