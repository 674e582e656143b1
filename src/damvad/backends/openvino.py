"""The OpenVINO backend: an I3D IR run by the OpenVINO CPU plugin.

* fp32: the converted model as is (features equal eager torch to ~1e-6 relative);
* bf16: the same IR compiled with ``INFERENCE_PRECISION_HINT=bf16`` (avx512_bf16 / AMX; on a CPU without
  bf16 units the plugin drops the hint, so the backend runs and records fp32, with a warning);
* int8: the NNCF-quantized IR, what stays unquantized runs in bf16.

The IRs are made and cached by :mod:`damvad.backends.openvino_ir` (a warm start is a read + compile, ~1 s);
:meth:`OpenVINOBackend.from_ir` runs any other IR folder (an experiment's). uint8 input (the extraction path)
is scaled to [-1, 1] inside the compiled graph (OpenVINO pre-processing), so no float copy of the frames is
ever made in Python.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from damvad.backends import check_batch, runnable_cpu_precision
from damvad.backends.openvino_ir import (
    FEATURES,
    LOGITS,
    CalibrationData,
    QuantizationSettings,
    cached_model_dir,
)
from damvad.choices import CPU_PRECISIONS

KINDS = ("uint8", "float32")  # the input element types a backend compiles its model for


def _ov() -> Any:
    import openvino

    return openvino


def cpu_capabilities() -> list[str]:
    """The CPU plugin's optimisation capabilities, e.g. ['FP32', 'BF16', 'INT8', ...]."""
    return list(_ov().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVINOBackend:
    """I3D on the OpenVINO CPU runtime (see the module docstring); the backend interface of
    :mod:`damvad.backends`. Runs batches of ``batch`` clips (a short last chunk is padded).

    ``calibration`` (the user's videos, int8 only) and ``calibration_data`` (what turns them, or the built-in
    set, into snippets) are what int8 is calibrated on when its IR is not cached yet."""

    name = "openvino"
    accepts_uint8 = True
    pin_memory = False
    device = torch.device("cpu")

    def __init__(
        self,
        precision: str = "int8",
        *,
        model: Any = None,
        checkpoint: str | Path | None = None,
        num_frames: int = 64,
        batch: int = 1,
        calibration: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        calibration_data: CalibrationData | None = None,
        settings: QuantizationSettings | None = None,
        threads: int | None = None,
        hint: str = "LATENCY",
        progress: bool = False,
    ) -> None:
        t0 = time.perf_counter()
        settings = settings or QuantizationSettings()
        if calibration:
            videos = (calibration,) if isinstance(calibration, (str, os.PathLike)) else tuple(calibration)
            settings = QuantizationSettings(**{**asdict(settings), "videos": tuple(str(v) for v in videos)})
        folder, meta = cached_model_dir(precision, checkpoint=checkpoint, model=model, num_frames=num_frames,
                                        batch=batch, settings=settings, calibration_data=calibration_data,
                                        progress=progress)
        self._open(folder, meta, precision, num_frames, batch, threads, hint)
        self.load_seconds = time.perf_counter() - t0

    @classmethod
    def from_ir(cls, folder: str | Path, precision: str = "int8", *, num_frames: int = 64, batch: int = 1,
                threads: int | None = None, hint: str = "LATENCY") -> OpenVINOBackend:
        """A backend running the IR in ``folder`` (``model.xml`` / ``.bin``, and ``meta.json`` when it has one:
        an entry of the cache, or an experiment's model); ``precision`` is the IR's (int8) or the inference
        precision of a float IR (fp32, bf16)."""
        folder = Path(folder)
        if not (folder / "model.xml").is_file():
            raise FileNotFoundError(f"{folder}: no model.xml (an OpenVINO IR folder)")
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"weights_sha256": ""}
        backend = cls.__new__(cls)
        t0 = time.perf_counter()
        backend._open(folder, meta, precision, num_frames, batch, threads, hint)
        backend.load_seconds = time.perf_counter() - t0
        return backend

    def _open(self, folder: Path, meta: dict[str, Any], precision: str, num_frames: int, batch: int,
              threads: int | None, hint: str) -> None:
        if precision not in CPU_PRECISIONS[self.name]:
            raise ValueError(f"precision must be one of {', '.join(CPU_PRECISIONS[self.name])}, got {precision!r}")
        precision = runnable_cpu_precision(self.name, precision)  # bf16 without bf16 units: fp32, said
        self.precision, self.num_frames, self.batch = precision, num_frames, batch
        self.folder, self.meta = folder, meta
        self.weights_sha256 = str(meta.get("weights_sha256") or "")
        self.core = _ov().Core()
        self.config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16",
            "PERFORMANCE_HINT": hint,
            # unpinned threads: the decoding thread shares these cores, and pinned inference threads wait for a
            # preempted sibling (`bench_extract.py --pinned`: whole video 1-4 % faster unpinned, same model rate)
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled: dict[str, Any] = {}  # kind -> infer request
        self._lock = threading.Lock()
        self.num_classes = int(self._model().outputs[1].get_partial_shape()[1].get_length())

    @property
    def batch_size(self) -> int:
        """Clips per call of the converted model (a longer input runs in chunks of this many)."""
        return self.batch

    def _model(self) -> Any:
        return self.core.read_model(str(self.folder / "model.xml"))

    def request(self, kind: str = "uint8") -> Any:
        """The infer request for ``kind`` input (uint8 or float32), compiled on first use with :attr:`config`
        (set ``config["PERF_COUNT"]`` before the first call to profile it)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        request = self._compiled.get(kind)
        if request is None:
            ov_model = self._model()
            if kind == "uint8":  # x / 127.5 - 1 inside the graph, fused by the CPU plugin
                from openvino.preprocess import PrePostProcessor

                ppp = PrePostProcessor(ov_model)
                ppp.input().tensor().set_element_type(_ov().Type.u8)
                ppp.input().preprocess().convert_element_type(_ov().Type.f32).mean(127.5).scale(127.5)
                ov_model = ppp.build()
            request = self.core.compile_model(ov_model, "CPU", self.config).create_infer_request()
            self._compiled[kind] = request
        return request

    def warmup(self, num_frames: int = 64, kind: str = "uint8") -> float:
        """Compile the model for ``kind`` input and run it once; seconds spent."""
        t0 = time.perf_counter()
        dtype = np.uint8 if kind == "uint8" else np.float32
        with self._lock:
            self.request(kind).infer({0: np.zeros((self.batch, 3, num_frames, 224, 224), dtype)})
        return time.perf_counter() - t0

    def features_and_logits(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = check_batch(x)
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        if arr.shape[2] != self.num_frames:
            raise ValueError(f"this model takes T={self.num_frames} frames, got T={arr.shape[2]}")
        kind = "uint8" if arr.dtype == np.uint8 else "float32"
        arr = np.ascontiguousarray(arr, dtype=np.uint8 if kind == "uint8" else np.float32)
        feats, logits = [], []
        with self._lock:
            request = self.request(kind)
            for start in range(0, arr.shape[0], self.batch):
                chunk = arr[start : start + self.batch]
                n = chunk.shape[0]
                if n < self.batch:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - n, axis=0)])
                out = request.infer({0: chunk})
                feats.append(np.array(out[FEATURES][:n], dtype=np.float32))
                logits.append(np.array(out[LOGITS][:n], dtype=np.float32))
        return torch.from_numpy(np.concatenate(feats)), torch.from_numpy(np.concatenate(logits))

    def __call__(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def logits(self, x: Any) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    def info(self) -> dict[str, Any]:
        out = {"backend": self.name, "precision": self.precision, "model": self.folder.name,
               "versions": self.meta.get("versions")}
        if self.precision == "int8":
            out["calibration"] = self.meta.get("calibration")
            out["quantization"] = self.meta.get("quantization")
        return out
