"""A Ray worker of ``damvad extract --engine ray``: one loaded I3D, one video at a time (see
:mod:`damvad.extraction.ray_driver`).

Kept apart from the driver's code: this is what runs on every node, imported there by Ray.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from damvad import __version__
from damvad.backends import I3DBackend
from damvad.choices import CUDA_PRECISIONS
from damvad.extraction.backend import open_backend
from damvad.extraction.batched import extract_batched_to_store
from damvad.extraction.local import extract_to_store
from damvad.extraction.plan import ExtractorSpec, ExtractReport
from damvad.store import FeatureStore
from damvad.video import VideoError, VideoInfo


def worker_backend(model: Any, setup: dict[str, Any], precision: str, device: Any) -> I3DBackend:
    """The worker's I3D: the local extraction's backend for ``device`` (:func:`~damvad.extraction.backend.
    open_backend`).

    On the CPU the backend the driver resolved (torch or OpenVINO); on a GPU the torch backend, in the
    spec's precision (the features of every worker share one spec), batched by the GPU's free memory. The
    rows record the backend that runs (:meth:`ExtractorSpec.produced_by`), not the one the driver planned.
    """
    from damvad.device import resolve_device

    dev = resolve_device(device)
    backend = setup.get("backend")
    if dev.type == "cuda":
        if precision not in CUDA_PRECISIONS:
            raise RuntimeError(f"{socket.gethostname()}: a GPU worker runs the torch backend, which has no "
                               f"{precision}; pass --precision {' / '.join(CUDA_PRECISIONS)} for a cluster with GPUs")
        backend = "torch"
    return open_backend(backend=backend, precision=precision, model=model, compile=setup["compile"], device=dev,
                        calibration=setup.get("calibration"), progress=False,
                        batch_size=None if dev.type == "cuda" else 1)


def _materialise_weights(data: bytes, filename: str, sha256: str) -> Path:
    """The checkpoint as a file on this node (``<cache>/cluster/<sha>/<name>``), written once, sha-checked."""
    from damvad.utils import atomic_write_bytes, cache_dir, sha256_bytes, sha256_file

    target = cache_dir() / "cluster" / sha256[:16] / filename
    if target.exists() and sha256_file(target) == sha256:
        return target
    got = sha256_bytes(data)
    if got != sha256:
        raise RuntimeError(f"weights received with sha256 {got}, expected {sha256}")
    atomic_write_bytes(target, data)
    return target


class FeatureWorker:
    """One Ray actor: one loaded I3D, one video at a time, written through the feature store.

    Runs with ``max_concurrency=2`` so that :meth:`progress` answers while :meth:`extract` works.
    """

    def __init__(self, setup: dict[str, Any], weights: bytes) -> None:
        import torch

        from damvad.i3d import load_i3d

        self._frames = 0
        host = socket.gethostname()
        if setup["damvad_version"] != __version__:
            raise RuntimeError(
                f"{host}: damvad {__version__} installed, the driver runs {setup['damvad_version']}; "
                "install the same version on every node"
            )
        out = Path(setup["out_dir"])
        if not (out / setup["marker"]).exists():
            raise RuntimeError(
                f"{host}: does not see the driver's features folder {out} (marker file missing); "
                "--out must be a folder every node sees at the same path (a shared filesystem)"
            )
        if setup.get("probe_video") and not Path(setup["probe_video"]).exists():
            raise RuntimeError(
                f"{host}: does not see the videos (no {setup['probe_video']}); "
                "the videos must be on a filesystem every node sees at the same path"
            )
        device = "cpu"
        if setup["num_gpus"]:  # Ray sets CUDA_VISIBLE_DEVICES to the GPU it gave this worker: it is cuda:0 here
            if not torch.cuda.is_available():
                raise RuntimeError(f"{host}: Ray gave this worker a GPU but torch sees no CUDA device")
            device = "cuda:0"
        threads = max(1, int(setup["num_cpus"]))
        torch.set_num_threads(threads)
        self.store = FeatureStore(out)
        self.spec = ExtractorSpec(**setup["spec"])
        model = load_i3d(_materialise_weights(weights, setup["weights_name"], self.spec.weights_sha256))
        if model.weights_sha256 != self.spec.weights_sha256:
            raise RuntimeError(f"{host}: loaded weights {model.weights_sha256}, expected {self.spec.weights_sha256}")
        t0 = time.perf_counter()
        self.backend = worker_backend(model, setup, self.spec.precision, device)
        self.backend.warmup(self.spec.snippet_len)  # compiled (torch) or converted (OpenVINO) before any video
        self.spec = self.spec.produced_by(self.backend)
        self.info = {
            "host": host,
            "pid": os.getpid(),
            "device": device,
            "threads": threads,
            "warmup_s": round(time.perf_counter() - t0, 2),
        }

    def describe(self) -> dict[str, Any]:
        return self.info

    def progress(self) -> int:
        """Frames done of the video in flight."""
        return self._frames

    def _count(self, frames: int) -> None:
        self._frames += frames

    def extract(self, name: str, path: str, info: VideoInfo | None) -> dict[str, Any]:
        """Extract and store one video; a bad video comes back as its error, anything else raises.

        On a GPU the video's snippets go through in full batches (decoded on a CPU thread meanwhile)."""
        self._frames = 0
        if self.spec.device.startswith("cuda"):
            report = ExtractReport()
            extract_batched_to_store([(name, Path(path))], self.backend, self.spec, {name: info} if info else {},
                                     self.store, report, decoders=1, on_frames=self._count)
            if name in report.failed:
                return {"name": name, "error": report.failed[name]}
            return {"name": name, "frames": report.frames, "warning": self.store.record(name).warning}
        try:
            record = extract_to_store(
                self.store, name, Path(path), self.backend, self.spec, on_frames=self._count, info=info
            )
        except VideoError as exc:
            return {"name": name, "error": exc.cause}
        return {"name": name, "frames": record.frames, "warning": record.warning}
