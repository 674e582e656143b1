"""A real Ray cluster on loopback for tests: a head and worker nodes as separate ``ray start`` processes.

Every node runs in its own process session, and so do all the processes Ray starts for it (GCS, raylet,
agents, worker processes): stopping a node ends its session, and :meth:`LoopbackCluster.leftovers`
lists what would still be running. Nodes use 127.0.0.2: Ray turns 127.0.0.1 into the machine's
external address, 127.0.0.2 it keeps, so no packet leaves loopback.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NODE_IP = "127.0.0.2"

# No OOM-killer on a shared 24 GiB machine (it would kill workers for other processes' memory); no usage
# report. Ray's default health checks stay: shorter ones mark starved nodes dead on a loaded machine.
RAY_ENV = {
    "RAY_memory_monitor_refresh_ms": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
OBJECT_STORE_BYTES = 150 * 1024 * 1024


class StartTimeout(RuntimeError):
    """Ray's own start-up limit (30 s for a raylet to register, not configurable) passed: an overloaded
    machine, not a fault of the code under test."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((NODE_IP, 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of a process session."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_session(sid: int, grace_s: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """``sig`` to the session's leader, then SIGKILL whatever of the session is left after ``grace_s``."""
    try:
        os.kill(sid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and session_pids(sid):
        time.sleep(0.2)
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and session_pids(sid):
        time.sleep(0.1)


class LoopbackCluster:
    """``ray start --head`` plus worker nodes, each ``--num-cpus`` CPUs, in a private temp dir."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.temp_dir = tempfile.mkdtemp(prefix="dmvray-", dir="/tmp")  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"{NODE_IP}:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}
        self.sessions: list[int] = []  # of every node ever started, killed ones too
        self.ports: list[int] = [self.port]
        self.env = dict(os.environ, **RAY_ENV)
        self.ray = str(Path(sys.executable).parent / "ray")

    def _start(
        self, name: str, args: Callable[[], list[str]], tries: int = 4, timeout_s: float = 120.0
    ) -> subprocess.Popen:
        """Start a node and wait until it runs; on a loaded machine Ray's own 30 s start-up limit can
        pass, so a node that fails is stopped and started again (``tries`` times in all)."""
        log = self.log_dir / f"ray-{name}.log"
        for attempt in range(1, tries + 1):
            cmd = [self.ray, "start", "--block", "--node-ip-address", NODE_IP,
                   "--object-store-memory", str(OBJECT_STORE_BYTES), "--disable-usage-stats", *args()]
            with open(log, "w") as fh:
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                        start_new_session=True, stdin=subprocess.DEVNULL)
            self.sessions.append(proc.pid)
            deadline = time.monotonic() + timeout_s
            while "Ray runtime started" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            else:
                self.nodes[name] = proc
                return proc
            kill_session(proc.pid, grace_s=2)
            proc.wait(timeout=30)
            if attempt == tries:
                text = log.read_text()
                kind = StartTimeout if "timed out during startup" in text else RuntimeError
                raise kind(f"ray node {name} did not start ({tries} tries):\n{text[-3000:]}")
            time.sleep(5.0 * attempt)  # let a load peak pass
        raise AssertionError("unreachable")

    def start_head(self, num_cpus: int = 1) -> None:
        def args() -> list[str]:  # a fresh port on each try: the failed try's may linger
            self.port = free_port()
            self.ports.append(self.port)
            self.address = f"{NODE_IP}:{self.port}"
            return ["--head", "--port", str(self.port), "--num-cpus", str(num_cpus), "--temp-dir", self.temp_dir,
                    "--include-dashboard=false", "--dashboard-port", str(free_port()),
                    "--dashboard-agent-listen-port", str(free_port())]

        self._start("head", args)

    def add_worker(self, name: str, num_cpus: int = 1) -> subprocess.Popen:
        return self._start(name, lambda: ["--address", self.address, "--num-cpus", str(num_cpus),
                                          "--dashboard-agent-listen-port", str(free_port())])

    def pids(self, name: str) -> list[int]:
        return session_pids(self.nodes[name].pid)

    def kill_node(self, name: str) -> None:
        """Kill a node as a crash would: SIGKILL to its every process, no goodbye to the head."""
        proc = self.nodes.pop(name)
        for pid in session_pids(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in [n for n in self.nodes if n != "head"] + [n for n in self.nodes if n == "head"]:
            proc = self.nodes.pop(name)
            kill_session(proc.pid)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not self.leftovers():
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Live processes of this cluster: in a node's session, or naming its temp dir or port."""
        mine = (self.temp_dir, *(f"{NODE_IP}:{port}" for port in self.ports))
        pids = {pid for sid in self.sessions for pid in session_pids(sid)}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                if any(m in cmdline(int(entry.name)) for m in mine) and is_alive(int(entry.name)):
                    pids.add(int(entry.name))
        return [f"{pid} {cmdline(pid)[:160]}" for pid in sorted(pids)]


def is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in ("Z", "X")
