"""
The OS process of the audit log's cross-process test.

``python tests/provision/audit_worker.py PATH COUNT TAG`` opens the audit log at PATH,
prints ``ready``, waits for one line on stdin (the start signal, so two workers begin
together), appends COUNT entries whose targets are ``TAG-0`` ..., and prints ``done``.
"""

# ruff: noqa: T201 - a command-line helper: it talks to the test through stdout

from __future__ import annotations

import sys

from bitget_keys.provision.audit_log import AuditLog


def main(path: str, count: int, tag: str) -> None:
    log = AuditLog(path)
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(count):
        log.record("rotate.create", account=tag, target=f"{tag}-{number}", outcome="ok")
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
