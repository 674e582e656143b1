"""The I3D a stage runs: a backend built from a stage's settings, with damvad's calibration data.

:func:`damvad.backends.build_backend` builds a backend from explicit parts; this is what extract, detect,
export and a cluster worker call: the defaults for the device (:func:`damvad.backends.resolve`), and for
int8 the calibration data damvad ships (:data:`~damvad.extraction.calibration.VIDEO_CALIBRATION`: the
user's videos, or built-in scenes). Compiled once per process (torch) or converted once on disk (OpenVINO).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from damvad.backends import I3DBackend, build_backend


def open_backend(
    *,
    backend: str | None = None,
    precision: str | None = None,
    device: Any = None,
    checkpoint: str | Path | None = None,
    model: Any = None,
    compile: bool = True,
    calibration: Sequence[str | os.PathLike] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
) -> I3DBackend:
    """An I3D backend for these settings (``None``: the defaults for ``device``). ``calibration``: the user's
    int8 calibration videos (default: the built-in set). ``batch_size`` ``None``: 1 on the CPU, from the free
    memory on a GPU."""
    from damvad.extraction.calibration import VIDEO_CALIBRATION

    return build_backend(backend, precision, checkpoint=checkpoint, model=model, compile=compile,
                         calibration=calibration, calibration_data=VIDEO_CALIBRATION, progress=progress,
                         device=device, batch_size=batch_size)
