"""
How the vault turns its passphrase into a key: Argon2id for new vaults, scrypt for old.

A stolen vault file is attacked offline, one guessed passphrase at a time, so the key
derivation is made expensive in memory and time; it is paid once per command that
opens the vault.

New vaults use Argon2id with 64 MiB of memory, 3 passes and 4 lanes (`ARGON2ID`): the
second of RFC 9106's two recommended settings, the one for machines that cannot spare
2 GiB. It asks more of a guesser than OWASP's minimum for Argon2id (19 MiB, 2 passes,
1 lane) by about five times in memory times passes, and unlocks in about 0.2 s on a
small two-core VM (the lanes are computed one after another here: cryptography takes no
thread count). Where OpenSSL lacks Argon2id (before 3.2, LibreSSL, BoringSSL:
cryptography raises ``UnsupportedAlgorithm``), new vaults use scrypt with N = 2^17,
r = 8, p = 1 (`SCRYPT_FALLBACK`), OWASP's minimum for scrypt (128 MiB, about 0.4 s).

The header names the derivation and its parameters, so a vault is always opened with
what it was written with: formats 1 and 2 used scrypt with N = 2^15 (`LEGACY_SCRYPT`,
a quarter of that minimum), and ``bitget-keys vault rekey`` rewrites such a vault with
today's derivation.

`FAST_INSECURE` is for test suites that create many vaults: it is passed explicitly
(``SecretsVault.open(..., kdf=FAST_INSECURE)``), never chosen by the library (no
environment variable or setting selects it), and protects nothing against guessing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bitget_keys._secret import Secret

__all__ = [
    "ARGON2ID",
    "FAST_INSECURE",
    "KDF_MAX_MEMORY",
    "LEGACY_SCRYPT",
    "SCRYPT_FALLBACK",
    "Argon2idKdf",
    "Kdf",
    "ScryptKdf",
    "UnknownKdfError",
    "argon2id_available",
    "default_kdf",
    "kdf_from_header",
    "outdated",
]

#: A header asking for more memory than this is refused as damaged rather than allowed
#: to exhaust the machine.
KDF_MAX_MEMORY: Final = 256 * 2**20
_KEY_BYTES: Final = 32


@attrs.frozen
class ScryptKdf:
    """scrypt with cost ``n`` (a power of two), block size ``r`` and parallelism ``p``."""

    n: int
    r: int = 8
    p: int = 1

    name: ClassVar[str] = "scrypt"

    def derive(self, passphrase: Secret, salt: bytes) -> bytes:
        kdf = Scrypt(salt=salt, length=_KEY_BYTES, n=self.n, r=self.r, p=self.p)
        return kdf.derive(passphrase.reveal().encode())

    def fields(self) -> dict[str, Any]:
        """The header's ``kdf`` fields besides ``name`` and ``salt``."""
        return {"n": self.n, "r": self.r, "p": self.p}

    def sane(self) -> bool:
        return (
            self.n > 1
            and self.n & (self.n - 1) == 0
            and 1 <= self.r <= 32
            and 1 <= self.p <= 16
            and 128 * self.n * self.r <= KDF_MAX_MEMORY
        )

    def __str__(self) -> str:
        exponent = self.n.bit_length() - 1
        return f"scrypt (N=2^{exponent}, r={self.r}, p={self.p})"


@attrs.frozen
class Argon2idKdf:
    """Argon2id with ``memory_kib`` KiB of memory, ``iterations`` passes and ``lanes``."""

    memory_kib: int
    iterations: int
    lanes: int

    name: ClassVar[str] = "argon2id"

    def derive(self, passphrase: Secret, salt: bytes) -> bytes:
        kdf = Argon2id(
            salt=salt,
            length=_KEY_BYTES,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )
        return kdf.derive(passphrase.reveal().encode())

    def fields(self) -> dict[str, Any]:
        """The header's ``kdf`` fields besides ``name`` and ``salt``."""
        return {"memory_kib": self.memory_kib, "iterations": self.iterations, "lanes": self.lanes}

    def sane(self) -> bool:
        return (
            1 <= self.lanes <= 16
            and 1 <= self.iterations <= 16
            and 8 * self.lanes <= self.memory_kib <= KDF_MAX_MEMORY // 1024
        )

    def __str__(self) -> str:
        memory = (
            f"{self.memory_kib // 1024} MiB"
            if self.memory_kib % 1024 == 0
            else f"{self.memory_kib} KiB"
        )
        return f"Argon2id ({memory}, t={self.iterations}, p={self.lanes})"


#: A vault's key derivation, as its header names it.
Kdf = ScryptKdf | Argon2idKdf

#: New vaults: RFC 9106's second recommended setting (see the module's docstring).
ARGON2ID: Final = Argon2idKdf(memory_kib=64 * 1024, iterations=3, lanes=4)
#: New vaults where OpenSSL has no Argon2id: OWASP's minimum for scrypt.
SCRYPT_FALLBACK: Final = ScryptKdf(n=2**17)
#: What vaults of formats 1 and 2 were written with.
LEGACY_SCRYPT: Final = ScryptKdf(n=2**15)
# OWASP's minimum for Argon2id, memory (KiB) times passes: 19 MiB, 2 passes.
_OWASP_ARGON2ID_MINIMUM: Final = 19 * 1024 * 2
#: For tests only, passed explicitly: the cheapest Argon2id, no protection at all.
FAST_INSECURE: Final = Argon2idKdf(memory_kib=8, iterations=1, lanes=1)


def argon2id_available() -> bool:
    """Whether this cryptography and OpenSSL derive Argon2id (OpenSSL 3.2 or later)."""
    try:
        Argon2id(salt=bytes(16), length=_KEY_BYTES, iterations=1, lanes=1, memory_cost=8)
    except UnsupportedAlgorithm:
        return False
    return True


def default_kdf() -> Kdf:
    """What a new vault (or a rekeyed one) is written with: `ARGON2ID`, else `SCRYPT_FALLBACK`."""
    return ARGON2ID if argon2id_available() else SCRYPT_FALLBACK


def outdated(kdf: Kdf) -> bool:
    """
    Whether ``kdf`` asks less of a guesser than OWASP's minimum (scrypt N = 2^17;
    Argon2id 19 MiB times 2 passes): a vault written with it should be rekeyed.
    """
    if isinstance(kdf, ScryptKdf):
        return kdf.n * kdf.r < SCRYPT_FALLBACK.n * SCRYPT_FALLBACK.r
    return kdf.memory_kib * kdf.iterations < _OWASP_ARGON2ID_MINIMUM


def kdf_from_header(fields: dict[str, Any]) -> Kdf | None:
    """
    The derivation a header's ``kdf`` object names; ``None`` when its fields are not sane.

    Raises:
        UnknownKdfError: it names a derivation this version does not know.
    """
    name = fields.get("name")
    if name not in {ScryptKdf.name, Argon2idKdf.name}:
        msg = f"unknown key derivation {name!r} (written by a newer bitget-keys?)"
        raise UnknownKdfError(msg)
    kdf: Kdf
    try:
        if name == ScryptKdf.name:
            kdf = ScryptKdf(n=int(fields["n"]), r=int(fields["r"]), p=int(fields["p"]))
        else:
            kdf = Argon2idKdf(
                memory_kib=int(fields["memory_kib"]),
                iterations=int(fields["iterations"]),
                lanes=int(fields["lanes"]),
            )
    except (KeyError, TypeError, ValueError):
        return None
    return kdf if kdf.sane() else None


class UnknownKdfError(Exception):
    """A checksummed header names a key derivation this version does not know."""
