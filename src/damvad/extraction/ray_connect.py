"""Joining a Ray cluster with a deadline (``damvad extract --engine ray --address ...``).

Ray's own client, given an address where something accepts TCP connections but never speaks Ray's
protocol (another service, a firewall that accepts), retries for many minutes (20 tries of ~40 s, printing
"Failed to connect to GCS at address ... within 5 seconds"), and each try leaves gRPC threads behind in
the process. So before ``ray.init`` joins, a child process does Ray's own handshake with the cluster's GCS
(reading its cluster id) and is killed at the deadline: nothing of it stays behind, and a wrong address
ends in seconds with what to check. Nothing listening at all is found sooner, by a plain TCP connect.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from damvad.choices import CONNECT_TIMEOUT_S

INSTALL_HINT = "pip install 'damvad[cluster]'"
START_LIMIT_S = 60.0  # for the child to import Ray before the handshake starts (a loaded machine)

_PROBE = """
import sys
try:
    from ray._private.services import canonicalize_bootstrap_address_or_die
    from ray._raylet import GcsClient
except ImportError as exc:
    print("UNSUPPORTED", exc, flush=True)
    sys.exit(3)
print("READY", flush=True)
try:
    address = canonicalize_bootstrap_address_or_die(sys.argv[1])
    GcsClient(address=address).cluster_id
except BaseException as exc:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    print("FAILED", type(exc).__name__ + ": " + (lines[0] if lines else ""), flush=True)
    sys.exit(2)
print("OK", address, flush=True)
"""


def import_ray() -> Any:
    """The ``ray`` module, or a RuntimeError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(
            f"--engine ray needs Ray, which is not installed: {INSTALL_HINT} "
            "(on the machine that starts the job and on every node of the cluster)"
        ) from exc
    return ray


def cluster_address(address: str | None) -> str | None:
    """The address ``ray.init(address)`` would join (``$RAY_ADDRESS`` when None), or None when it starts a
    new Ray instance on this machine, or joins through Ray Client (``ray://``, bounded by Ray's own retries)."""
    target = address if address is not None else os.environ.get("RAY_ADDRESS")
    if not target or target == "local" or "://" in target:
        return None
    return target


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT where nothing listens (Ray itself retries for minutes)."""
    if address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise RuntimeError(
            f"no Ray cluster answers at {address} ({exc}); start one with `ray start --head --port PORT` "
            "or pass --address auto on a node of a running cluster"
        ) from exc


def check_cluster(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a RuntimeError naming the address and what to check unless the Ray cluster at ``address``
    completes Ray's handshake within ``timeout_s`` seconds (see the module docstring). Nothing to check for a
    new local instance or Ray Client; a Ray without the internals the check uses is let through (logged)."""
    target = cluster_address(address)
    if target is None:
        return
    if timeout_s <= 0:
        raise ValueError(f"connect_timeout must be > 0 seconds, got {timeout_s}")
    check_reachable(target)
    advice = (f"is {target} a Ray head's GCS port (`ray start --head --port PORT`; `ray status --address "
              f"{target}` on that machine), and does a firewall let Ray's traffic through? A slow cluster: "
              f"--connect-timeout SECONDS (now {timeout_s:g})")
    status, detail = _probe(target, timeout_s)
    if status == "OK":
        return
    if status == "UNSUPPORTED":
        import logging

        logging.getLogger(__name__).info("Ray's handshake with %s not checked beforehand (%s)", target, detail)
        return
    if status == "TIMEOUT":
        raise RuntimeError(f"no Ray cluster answered at {target} within {timeout_s:g} s: something accepts "
                           f"connections there but did not complete Ray's handshake; {advice}")
    raise RuntimeError(f"cannot join the Ray cluster at {target}: {detail or status}; {advice}")


def _probe(address: str, timeout_s: float) -> tuple[str, str]:
    """(status, detail) of the handshake child: OK, FAILED, UNSUPPORTED or TIMEOUT (killed at the deadline)."""
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, address], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: killed whole
    assert proc.stdout is not None
    lines = _Lines(proc.stdout.fileno())
    try:
        line = lines.next(START_LIMIT_S)
        if not line and proc.poll() is None:
            return "FAILED", f"the check did not even start within {START_LIMIT_S:g} s (an overloaded machine?)"
        if line.startswith("READY"):
            line = lines.next(timeout_s)
        if not line:
            try:
                proc.wait(timeout=1.0)  # the pipe closed: it exited (a crash)
            except subprocess.TimeoutExpired:
                return "TIMEOUT", ""
            return "FAILED", f"the check exited with code {proc.returncode}"
        status, _, detail = line.strip().partition(" ")
        return status, detail
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()


class _Lines:
    """Lines from a pipe, each waited for with a deadline (unbuffered: a line already read is never missed)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, b""

    def next(self, timeout_s: float) -> str:
        """The next line, or "" at the deadline or when the pipe closes without one."""
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return ""
                chunk = os.read(self.fd, 4096)
                if not chunk:
                    return ""
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")
