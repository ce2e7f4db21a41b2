"""
A strict emulation of Bitget's API-key endpoints, for your tests and ours.

``async with Emulator() as emulator:`` serves the emulated exchange on 127.0.0.1;
point a `bitget_keys.Client` at ``emulator.base_url`` with
``emulator.accounts[0].credentials``. It checks signatures over the raw bytes it
receives, enforces each endpoint's documented per-UID rate with an exact sliding
window, the per-IP limit with its lockout, the quotas (20 sub-accounts, 10 keys) and
global name uniqueness, answers with Bitget's envelopes and codes, can inject faults
(latency, dropped connections after the fact, server errors, clock skew) and records
which it injected, and audits every lane so tests can prove no window held more than the
limit.

A master is classic (served by the v2 endpoints; the v3 ones answer 40084) or unified
(``EmulatorAccount(mode="unified")``: served by the v3 settings, sub-account, key and
ND-broker key endpoints, as strictly; the v2 ones answer 40085).

The keys masters make for their sub-accounts sign requests too, as their sub-accounts
in their master's mode: they may ask who they are (account-info) and nothing else. A new
key answers 40006 until ``Limits.key_propagation_ms`` has passed. What happens in
Bitget's web UI is done through `Exchange` (``emulator.exchange``): `Exchange.key`,
`Exchange.tamper_key`, `Exchange.add_key`, `Exchange.set_frozen`,
`Exchange.add_subaccount`.

`load_accounts_file` reads the accounts file of ``bitget-keys emulator --accounts``.

`LoopbackProxy` is a forward HTTP proxy on 127.0.0.1 whose upstream connections leave
from a loopback address of your choice (127.0.0.2, ...), so the emulator counts each
proxy's requests against its own IP: tests of egress through proxies.

`LoopClock` drives a running loop's clock by hand, so tests of anything rate-limited
(the emulator's windows and the client's scheduler alike) run without sleeping.
"""

from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._accounts_file import load_accounts_file
from bitget_keys.testing._audit import Audit, LaneAudit
from bitget_keys.testing._clock import LoopClock
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._proxy import LoopbackProxy
from bitget_keys.testing._server import (
    DroppedAnswer,
    Emulator,
    EmulatorTransport,
    Faults,
    Unpaced,
)
from bitget_keys.testing._state import Exchange

__all__ = [
    "Audit",
    "DroppedAnswer",
    "Emulator",
    "EmulatorAccount",
    "EmulatorTransport",
    "Exchange",
    "Faults",
    "LaneAudit",
    "Limits",
    "LoopClock",
    "LoopbackProxy",
    "Unpaced",
    "load_accounts_file",
]
