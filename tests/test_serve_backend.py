"""One I3D for every camera: concurrent callers get their own results, batched where the backend takes batches."""

from __future__ import annotations

import threading

import torch

from damvad.backends import FunctionBackend
from damvad.serve.backend import SharedBackend
from videotools import fake_features


def test_concurrent_snippets_are_batched_and_each_caller_gets_its_own_features():
    calls: list[int] = []

    def fn(x):
        calls.append(len(x))
        return fake_features(x)

    shared = SharedBackend(FunctionBackend(fn, batch_size=4))  # 4: as the torch backend on a GPU
    entered, gate = threading.Event(), threading.Event()
    original = shared.fn

    def held(x):  # the first call waits until the other four are queued behind it
        entered.set()
        gate.wait()
        return original(x)

    shared.fn = held
    inputs = [torch.rand(1, 3, 64, 8, 8) * 2 - 1 for _ in range(5)]
    results: dict[int, torch.Tensor] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, shared(inputs[i]))) for i in range(5)]
    threads[0].start()
    assert entered.wait(30)
    for t in threads[1:]:
        t.start()
    while shared._queue.qsize() < 4:
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join(30)
    shared.close()
    for i, x in enumerate(inputs):
        torch.testing.assert_close(results[i], fake_features(x))
    assert calls == [1, 4] and (shared.calls, shared.batches) == (5, 2)
    assert shared.accepts_uint8 is False  # looks like the backend it wraps


def test_an_error_reaches_every_caller_of_its_batch():
    def broken(x):
        raise RuntimeError("backend lost")

    shared = SharedBackend(FunctionBackend(broken))
    try:
        shared(torch.zeros(1, 3, 64, 8, 8))
    except RuntimeError as exc:
        assert "backend lost" in str(exc)
    else:
        raise AssertionError("the error was swallowed")
    finally:
        shared.close()
