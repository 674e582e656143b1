"""One I3D for every camera: snippets from the camera threads queue here and one inference thread runs
them, first come first served (no camera starves another), several at once where the backend takes
batches (the torch backend on a GPU: ``batch_size`` from its free memory). On the CPU the OpenVINO
backend runs one snippet per call: batching measured no faster there (benchmarks/README.md), and its
converted model has batch 1.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from damvad.backends import I3DBackend


@dataclass
class _Request:
    x: Any
    done: threading.Event = field(default_factory=threading.Event)
    out: Any = None
    error: BaseException | None = None


class SharedBackend:
    """An I3D backend (:mod:`damvad.backends`) shared by many calling threads: itself a backend, the wrapped
    one's facts, so each camera's :class:`damvad.detect.Detector` calls it as its own."""

    def __init__(self, backend: I3DBackend, max_batch: int | None = None):
        self.backend = backend
        self.fn: Any = backend  # what the inference thread calls (tests hold it there)
        self.name, self.precision, self.weights_sha256 = backend.name, backend.precision, backend.weights_sha256
        self.num_classes, self.accepts_uint8, self.device = backend.num_classes, backend.accepts_uint8, backend.device
        self.batch_size = self.max_batch = int(max_batch or backend.batch_size)
        self.pin_memory = backend.pin_memory
        self.calls = self.batches = 0  # snippets run, and in how many backend calls
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="damvad-i3d", daemon=True)
        self._thread.start()

    def features_and_logits(self, x: Any) -> Any:
        """Through the wrapped backend directly (logits are for checks, not the shared queue)."""
        return self.backend.features_and_logits(x)

    def logits(self, x: Any) -> Any:
        return self.backend.logits(x)

    def warmup(self, num_frames: int = 64) -> float:
        return self.backend.warmup(num_frames)

    def info(self) -> dict[str, Any]:
        return self.backend.info()

    def __call__(self, x: Any) -> Any:
        request = _Request(x)
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.out

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _take(self) -> list[_Request] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch, rows = [first], len(first.x)
        while rows < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(nxt)
            rows += len(nxt.x)
        return batch

    def _run(self) -> None:
        import torch

        while (batch := self._take()) is not None:
            try:
                if len(batch) == 1:
                    outs = [self.fn(batch[0].x)]
                else:
                    joined = self.fn(torch.cat([torch.as_tensor(r.x) for r in batch]))
                    outs = list(torch.split(torch.as_tensor(joined), [len(r.x) for r in batch]))
                for request, out in zip(batch, outs, strict=True):
                    request.out = out
            except BaseException as exc:  # handed to every caller of the batch
                for request in batch:
                    request.error = exc
            self.calls += len(batch)
            self.batches += 1
            for request in batch:
                request.done.set()
