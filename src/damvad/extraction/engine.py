"""``extract(cfg)``: the features of every video in a config's inputs, by the engine it names.

``local``: this machine, one video at a time on the CPU (:mod:`damvad.extraction.local`), or several videos
decoded at once and their snippets packed into full batches when a call takes more than one clip or runs on
a GPU (:mod:`damvad.extraction.batched`). ``ray``: every node of a Ray cluster
(:mod:`damvad.extraction.ray_driver`). Every engine plans with the same resume check
(:mod:`damvad.extraction.plan`) and stamps its rows with what ran the I3D (``ExtractorSpec.produced_by``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from damvad.backends import I3DBackend, resolve
from damvad.extraction.batched import extract_batched_to_store
from damvad.extraction.local import extract_one_by_one
from damvad.extraction.plan import (
    ExtractorSpec,
    ExtractReport,
    collect_videos,
    open_store,
    plan_videos,
    probe_all,
    write_manifest,
)
from damvad.framefolder import frame_rate
from damvad.stages import ExtractConfig


def extract(cfg: ExtractConfig, *, videos: Mapping[str, str | Path] | None = None,
            i3d: I3DBackend | None = None, progress: bool = True) -> ExtractReport:
    """Extract features for every video in ``cfg.inputs`` (files, folders, ``.txt`` lists; a video is a file
    or a folder of frames) into ``cfg.features``, by ``cfg.engine``.

    ``videos``: name -> video instead of ``cfg.inputs`` (a dataset's names). ``i3d``: the I3D backend to run
    (a stand-in, or one already built; local engine only), else built from ``cfg`` (``cfg.backend`` /
    ``cfg.precision`` ``None``: the fastest measured on ``cfg.device``, see :mod:`damvad.backends`)."""
    if (videos is None and not cfg.inputs) or not cfg.features:
        raise ValueError("extract needs videos (arguments or `inputs` in the config) and --out (or `features`)")
    if cfg.engine == "ray":
        if i3d is not None:
            raise ValueError("a Ray extraction builds its I3D on every worker; it takes no backend")
        from damvad.extraction.ray_driver import extract_on_ray

        return extract_on_ray(cfg, videos=videos, progress=progress)
    return extract_locally(cfg, videos=videos, i3d=i3d, progress=progress)


def extract_locally(cfg: ExtractConfig, *, videos: Mapping[str, str | Path] | None = None,
                    i3d: I3DBackend | None = None, progress: bool = True) -> ExtractReport:
    """The local engine (see :func:`extract`): ``cfg.batch_size`` clips per I3D call (``None``: 1 on the CPU,
    from the free memory on a GPU); above 1, or on a GPU, the batched path with ``cfg.decoders`` threads."""
    from damvad.device import resolve_device
    from damvad.progress import progress_bar

    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
    backend = i3d
    dev = backend.device if backend is not None else resolve_device(cfg.device)
    name, precision = (backend.name, backend.precision) if backend is not None else resolve(cfg.backend, cfg.precision,
                                                                                           dev)
    names = collect_videos(videos if videos is not None else cfg.inputs)
    store = open_store(cfg.features)
    report = ExtractReport()
    spec = ExtractorSpec(crops=cfg.crops, precision=precision, dtype=cfg.dtype, stride=cfg.stride, backend=name,
                         device=str(dev))
    if backend is not None:
        spec = spec.produced_by(backend)
    todo = plan_videos(store, names, spec, report, cfg.overwrite)
    if todo and backend is None:
        from damvad.extraction.backend import open_backend  # looked up now: the one place a test swaps I3D

        backend = open_backend(backend=name, precision=precision, device=dev, checkpoint=cfg.checkpoint,
                               compile=cfg.compile, calibration=cfg.calibration, batch_size=cfg.batch_size)
        spec = spec.produced_by(backend)
        todo = plan_videos(store, names, spec, report, cfg.overwrite)  # the weights are known only now
    spec.fps = frame_rate(cfg.fps, (path for _, path in todo))  # warned once for the batch when assumed
    infos = probe_all(todo, fps=spec.fps)  # probed once: for the progress total and the manifest rows
    total = sum(info.declared_frames for info in infos.values())
    start = time.perf_counter()
    bar = progress_bar(total=total or None, unit="frame", disable=not progress, dynamic_ncols=True, desc="extract")
    try:
        if todo and backend is not None:
            batch = int(cfg.batch_size or backend.batch_size)
            if batch > 1 or dev.type == "cuda":
                extract_batched_to_store(todo, backend, spec, infos, store, report, bar, batch, cfg.decoders)
            else:
                extract_one_by_one(todo, backend, spec, infos, store, report, bar)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
        write_manifest(store, report)
    return report
