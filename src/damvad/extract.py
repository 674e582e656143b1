"""The keyword form of extraction, for scripts and tests: ``extract(videos, out_dir, crops=..., ...)``.

The stage itself is :func:`damvad.extraction.extract`, which takes an :class:`~damvad.stages.ExtractConfig`;
this builds one from keywords (the config's defaults and checks apply) and runs it on this machine. A plain
function given as ``feature_fn`` is a stand-in I3D (:class:`~damvad.backends.FunctionBackend`), recorded with
``precision`` (default fp32) and ``weights_sha256``; a backend records its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from damvad.backends import FunctionBackend, I3DBackend
from damvad.extraction import ExtractorSpec, ExtractReport  # noqa: F401 -- re-exported
from damvad.extraction import extract as extract_cfg
from damvad.extraction.local import extract_video  # noqa: F401 -- re-exported
from damvad.extraction.plan import source_fingerprint, video_status  # noqa: F401 -- re-exported
from damvad.frames import normalize_crops
from damvad.snippets import SNIPPET_LEN
from damvad.stages import ExtractConfig


def extract(
    inputs: Sequence[str | Path] | Iterable[str | Path] | Mapping[str, str | Path],
    out_dir: str | Path,
    *,
    crops: str = "center",
    precision: str | None = None,
    dtype: str = "float32",
    compile: bool = True,
    checkpoint: str | Path | None = None,
    feature_fn: I3DBackend | Callable[[Any], Any] | None = None,
    weights_sha256: str = "",
    overwrite: bool = False,
    progress: bool = True,
    backend: str | None = None,
    calibration: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    device: Any = None,
    batch_size: int | None = None,
    decoders: int | None = None,
    stride: int = SNIPPET_LEN,
    fps: float | None = None,
) -> ExtractReport:
    """Extract every video in ``inputs`` (files, folders, ``.txt`` lists; or a mapping name -> video) into
    ``out_dir`` on this machine: :func:`damvad.extraction.extract` with these settings (see
    :class:`~damvad.stages.ExtractConfig`). ``feature_fn``: the I3D to run (a backend, or a stand-in
    function); ``weights_sha256``: what a stand-in records as its weights."""
    runner = None
    if feature_fn is not None:
        runner = feature_fn if isinstance(feature_fn, I3DBackend) else FunctionBackend(
            feature_fn, precision=precision or "fp32", weights_sha256=weights_sha256)
    videos = inputs if isinstance(inputs, Mapping) else None
    if isinstance(calibration, (str, os.PathLike)):
        calibration = [calibration]
    cfg = ExtractConfig(
        inputs=[] if videos is not None else [str(p) for p in inputs], features=str(out_dir),
        crops=normalize_crops(crops), backend=backend, precision=precision, dtype=dtype,
        checkpoint=None if checkpoint is None else str(checkpoint), compile=compile, overwrite=overwrite,
        calibration=[str(c) for c in calibration] if calibration else None,
        device=None if device is None else str(device), batch_size=batch_size, decoders=decoders, stride=stride,
        fps=fps,
    )
    return extract_cfg(cfg, videos=videos, i3d=runner, progress=progress)
