"""
The long help texts of the commands (their ``--help`` descriptions), kept apart from
the parser that shows them.
"""

from __future__ import annotations

from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV
from bitget_keys.provision.vault import VAULT_KEY_ENV

EMULATOR_HELP = """\
Serve the bundled Bitget emulator on loopback until interrupted.

The accounts file (TOML) lists master accounts:

    [[accounts]]
    uid = "1000000001"
    api_key = "bg_example"
    secret_key = "example-secret"
    passphrase = "ExamplePass1"
    broker = false          # ND broker: may use the broker endpoints
    copy_trader = "new"     # "new", "old", or leave out for a non-trader
    mode = "classic"        # "classic" (v2 endpoints; v3 ones give 40084) or
                            # "unified" (v3 endpoints; v2 ones give 40085);
                            # the older `unified = true` means mode = "unified"
    ip_list = []            # the key's whitelist; callers from elsewhere get 40038

    [[accounts.broker_subaccounts]]   # optional, for broker accounts
    sub_uid = "5550001"
    api_key = "bg_sub_key"
    passphrase = "SubKeyPass1"
    permissions = ["spot_trade"]
    perm_type = "readonly"

Without a file, --generate accounts are made up; --print-credentials shows them.
"""


VAULT_KEY_HELP = f"""\
The vault passphrase comes from, first found: --vault-key-file PATH (the file's first
line; - reads one line of stdin), ${VAULT_KEY_ENV}, then
${VAULT_KEY_FILE_ENV} (a file, as --vault-key-file); else, when stdin is a
terminal, it is asked for (twice for a new vault); otherwise the command stops. A key
file its group or others can read is used with a warning. A new vault's passphrase
needs 12 characters or more.
"""


APPLY_HELP = f"""\
Create what the plan says is missing, and store every new key's secret and passphrase
in the encrypted vault (--vault) the moment Bitget answers.

Without --yes, apply first shows what it would create or change (as `plan` does) and
asks before creating or changing anything; answer y to go on. When stdin is not a terminal, or with
--json, there is no one to ask: apply then refuses to start unless --yes is given
(review with `bitget-keys plan` first).

Several apply processes, on one host or many, can split a plan: run it with
--shard 1/N, ..., --shard N/N (each with its own --vault and --state), and give
them all the same --redis URL so that they share Bitget's per-UID limits. Without
--redis each process keeps its own limits, which is exact only while no two processes
use the same master account. When Redis is unreachable, nothing is sent, unless
--redis-fallback FRACTION lets each process pace itself at that fraction of the limits
until Redis is back. Processes
behind one public IP share its budget (6,000 requests a minute); on hosts behind
different public IPs, give each IP its own --egress name, so that each host gets its
own budget instead of sharing one.

One apply can also leave through several public IPs: give --egress NAME=PROXY_URL once
per HTTP(S) proxy. The plan's masters are spread over them round-robin in plan order
(the first master through the first proxy, the second through the second, ...; accounts
of one master UID always together), each egress with its own per-IP budget, so a bulk
job bound by the IP budget runs up to that many times faster. A proxy's user name and
password are shown masked; to keep them out of the process list too, give
--egress NAME=env:VARIABLE and the URL in that environment variable.

{VAULT_KEY_HELP}
Apply creates a vault only with --create-vault, or when you answer yes on a terminal:
otherwise a --vault that names no vault (a typo) stops it before anything is sent.

Apply holds a lock on the vault and on the state file (VAULT.lock, STATE.lock) for the
whole run: a second apply on either fails at once naming the run that holds it, or
waits for it with --wait-lock. A damaged vault is refused (repair it first with
`bitget-keys vault repair`); a version-1 vault is upgraded to version 2 first. A vault
or state file that others can read or write is used with a warning, or refused with
--strict.

PLAN may be - to read the plan from stdin; then there is no one to ask either, so
--yes is required.

Exit status: 0 all items done; 4 some done and others failed, unknown or orphaned (a
re-run creates only what is missing); 1 none done (every item it reached failed; 69 or
78 when all failed for that one reason); 5
declined at the prompt; 3 secrets that could be stored nowhere; 64 a wrong command line;
65 an invalid plan; 66 no plan file; 69 Bitget or Redis unreachable; 74 the vault or
state file cannot be written; 75 locked by another run; 78 a missing or wrong vault key,
or credentials Bitget refused; 130 or 143 stopped by SIGINT or SIGTERM.
"""


VAULT_HELP = f"""\
Read, check, repair and rekey the encrypted secrets vault that apply writes.

A damaged vault (a torn last line after a crash, an altered byte, a removed or repeated
line) still opens: list, show and export --skip-damaged read its intact records and say
which lines are damaged; `vault check` reports them, and `vault repair` recovers every
intact record into a repaired vault, keeping the damaged file beside it. `vault rekey`
changes the passphrase and upgrades an older vault's key derivation.

{VAULT_KEY_HELP}"""


VAULT_CHECK_HELP = f"""\
Read every line of the vault and report each damaged one with what is wrong with it:
torn, altered or from another vault, missing, repeated or out of order, or a damaged
header (read from its copy). Prints nothing secret.

Exit status: 0 intact, 1 damaged (repair with `bitget-keys vault repair`), 66 no vault,
78 a missing or wrong vault key.

{VAULT_KEY_HELP}"""


VAULT_REPAIR_HELP = f"""\
Recover every intact record of a damaged vault into a repaired vault, with the same
passphrase. The repaired vault is written whole and then takes the vault's name; the
damaged original is kept beside it as VAULT.damaged-<UTC time>, never deleted. With
--output PATH the repaired vault is written there instead (a new file) and the vault
is left as it is. An intact vault is left alone.

Repair takes the vault's lock, so it fails at once (or waits, with --wait-lock) while
an apply is using the vault.

{VAULT_KEY_HELP}"""


VAULT_SHOW_HELP = f"""\
Show the vault record of one key. Secrets are printed as ******** unless --reveal.

LABEL is what `bitget-keys vault list` shows in its third column: the key as the plan
and apply name it, SUB-LABEL/KEY (e.g. alpha/trade), or just the label for other keys
(a copy key is "copy"). The Bitget names work too: SUBACCOUNT/KEY, the sub-account's
Bitget name (the list's last column) and the key's label (e.g. alphabot/trade). So does
an API key. Exactly one record must match, or exactly one current one (a rotated key's
predecessors, previous or revoked, keep its label): exit status 1 when none does, 64 when
several do (narrow with --account, the plan's account name, or give the API key).

{VAULT_KEY_HELP}"""


VAULT_EXPORT_HELP = f"""\
Write every record of the vault, with its secret key and passphrase in clear.

With --output FILE the export goes to a new file created with mode 0600, written whole
and fsynced before it appears; an existing FILE is kept unless --force (the replacement
is 0600 too). Without --output, the secrets go to stdout, and only with --reveal.

A damaged vault is refused unless --skip-damaged, which exports its intact records and
names the damaged lines on stderr (or repair it first: `bitget-keys vault repair`).

--format json (the default) is one array of objects; csv has a header row, and
permissions and IP whitelists as space-separated lists.

{VAULT_KEY_HELP}"""


VAULT_REKEY_HELP = f"""\
Change the vault passphrase: every record is sealed again under the new passphrase and
today's key derivation (Argon2id; scrypt with N = 2^17 where OpenSSL lacks it), which
also upgrades a vault written by an older bitget-keys (scrypt with N = 2^15).

The current passphrase comes from the usual sources (below); the new one from
--new-key-file, else it is asked for twice on the terminal. The rewritten vault is
written whole, fsynced and read back with the new passphrase (every record) before it
takes the vault's name; the vault as it was is kept beside it as
VAULT.pre-rekey-<UTC time>. That file still opens with the OLD passphrase: delete it
once the new one works (if the old passphrase leaked, at once).

Rekey takes the vault's lock, so it fails at once (or waits, with --wait-lock) while an
apply is using the vault. A damaged vault is refused: repair it first.

{VAULT_KEY_HELP}"""


PLAN_HELP = """\
Read every master's live state (all at once, one read each) and show what apply would
do, as Terraform does: + create, ~ change, - revoke, each with the attributes it sets
(a broker key's changes as old -> new), the copy key apply would create, the orphans it
would report (live keys whose secrets the vault lacks), and a last line
"Plan: N to create, M to change, K to revoke." Nothing is changed.

The vault (--vault, else bitget-keys.vault when it exists and its key is at hand) tells
which copy keys and secrets apply already has.

--out FILE saves the reviewed plan (mode 0600, no secrets: credentials stay env:
references): `bitget-keys apply FILE` then applies exactly these changes, without
asking, or refuses when live state moved since.

Exit status: 0; with --detailed-exitcode, 0 no changes, 1 an error, 2 changes.
"""
