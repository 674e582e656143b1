"""Extraction on a real Ray cluster: a head and a worker node (1 CPU each, separate processes, loopback).

A killed driver that a rerun resumes, to the same files as local extraction, a bad video recorded while
the rest go on, a rerun that skips finished videos; a worker node killed mid-video without a lost video.
I3D runs eager (no compilation) in one thread per worker; the local reference does the same, since
eager results depend on the thread count.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="needs the cluster extra: pip install -e '.[cluster]'")

from damvad.devtools.raycluster import RAY_ENV, LoopbackCluster, StartTimeout, kill_session  # noqa: E402
from damvad.extract import extract  # noqa: E402
from damvad.store import FeatureStore  # noqa: E402
from videotools import write_video  # noqa: E402

pytestmark = pytest.mark.slow

NAMES = ["a", "c", "d"]
DRIVER_TIMEOUT_S = 480  # generous: the machine running the tests may be shared


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", 100, seed=1)  # 2 snippets, the last one padded
    write_video(root / "d.mp4", 40, seed=4)  # 1 snippet: done first, while "a" is in flight
    write_video(root / "c.avi", 1, seed=3)  # one frame
    return root


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory):
    """Local extraction as each worker runs it: eager fp32, one thread."""
    import torch

    out = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = extract([videos], out, compile=False, progress=False, backend="torch", precision="fp32")
    finally:
        torch.set_num_threads(threads)
    assert report.ok and sorted(report.done) == NAMES
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head + one worker node; stopped afterwards, also when a test fails, and checked for leftovers."""
    c = LoopbackCluster(tmp_path_factory.mktemp("ray-logs"))
    try:
        try:
            c.start_head(num_cpus=1)
            c.add_worker("worker", num_cpus=1)
        except StartTimeout as exc:  # every other start failure fails the tests
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            pytest.skip(f"Ray could not start a node within its fixed 30 s limit, 4 tries (load average {load}): "
                        f"machine overloaded; {str(exc).splitlines()[0]}")
        yield c
    finally:
        c.stop()
        left = c.leftovers()
        assert not left, "processes of the test cluster still running:\n" + "\n".join(left)


def driver_cmd(cluster: LoopbackCluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "damvad.cli", "-v", "extract", *args, "--engine", "ray",
            "--address", cluster.address, "--no-compile", "--backend", "torch", "--precision", "fp32", "--quiet"]


def start_driver(cluster: LoopbackCluster, log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(driver_cmd(cluster, *args), stdout=fh, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **RAY_ENV), start_new_session=True,
                                stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen, log: Path, timeout_s: float = DRIVER_TIMEOUT_S) -> str:
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_session(proc.pid, grace_s=0)
        pytest.fail(f"driver did not finish in {timeout_s} s:\n{log.read_text()[-4000:]}")
    finally:
        kill_session(proc.pid, grace_s=0)  # nothing of the driver's may outlive it
    return log.read_text()


def run_driver(cluster: LoopbackCluster, log: Path, *args: str) -> tuple[int, str]:
    proc = start_driver(cluster, log, *args)
    out = finish(proc, log)
    return proc.returncode, out


def wait_for(condition, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f":\n{log.read_text()[-4000:]}" if log else ""))
        time.sleep(0.05)


def assert_same_as_reference(out: Path, reference: Path, names: list[str] = NAMES) -> None:
    store = FeatureStore(out)
    assert store.names() == names
    for name in names:
        assert (out / f"{name}.npy").read_bytes() == (reference / f"{name}.npy").read_bytes(), name
        assert json.loads((out / f"{name}.json").read_text()) == json.loads((reference / f"{name}.json").read_text())
    assert (out / "manifest.csv").read_text() == (reference / "manifest.csv").read_text()
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".damvad-ray-*")), "nothing half-written remains"


def test_killed_driver_resumes_to_local_files_bad_video_recorded_rerun_skips(cluster, videos, reference, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00garbage" * 100)
    inputs = [str(videos), str(broken), "--out", str(tmp_path / "feats")]
    out = tmp_path / "feats"

    log = tmp_path / "killed.log"
    proc = start_driver(cluster, log, *inputs)
    try:
        wait_for(lambda: list(out.glob("*.json")), DRIVER_TIMEOUT_S, "a first finished video", log)
    finally:
        kill_session(proc.pid, grace_s=0, sig=signal.SIGKILL)
        proc.wait(timeout=30)
    done_before = len(list(out.glob("*.json")))
    assert 0 < done_before < len(NAMES), "the kill should land mid-job"

    rc, text = run_driver(cluster, tmp_path / "resumed.log", *inputs)
    assert rc == 1, text  # the broken video failed, the others are done
    assert f"skipped {done_before} already done, failed 1" in text, text
    assert "FAILED broken: cannot open as a video" in text
    assert "2 worker(s) on 2 node(s)" in text, text  # the rest was spread over both nodes
    assert_same_as_reference(out, reference)

    rc, text = run_driver(cluster, tmp_path / "rerun.log", *inputs)
    assert rc == 1 and "extracted 0 video(s), skipped 3 already done, failed 1" in text, text
    assert "Connecting to existing Ray cluster" not in text  # nothing left a worker could do
    assert_same_as_reference(out, reference)


def test_worker_node_killed_mid_video_loses_nothing(cluster, videos, reference, tmp_path):
    """Runs last: it kills the module's worker node."""
    out = tmp_path / "feats"
    log = tmp_path / "driver.log"
    proc = start_driver(cluster, log, str(videos), "--out", str(out))

    def worker_node_extracting() -> bool:  # the driver logs "NAME -> worker pid PID on ..." (-v)
        on_node = set(cluster.pids("worker"))
        pids = re.findall(r"-> worker pid (\d+) on", log.read_text())
        return any(int(pid) in on_node for pid in pids)

    try:
        wait_for(worker_node_extracting, DRIVER_TIMEOUT_S, "a video in flight on the worker node", log)
        cluster.kill_node("worker")
    except BaseException:
        kill_session(proc.pid, grace_s=0)
        raise
    text = finish(proc, log)
    assert proc.returncode == 0, text
    assert "lost while extracting" in text and "1 worker(s) lost, 1 video(s) retried" in text, text
    assert "extracted 3 video(s), skipped 0 already done, failed 0" in text, text
    assert_same_as_reference(out, reference)
