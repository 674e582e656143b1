"""Where torch work runs: the one place that turns ``auto | cpu | cuda[:N]`` into a ``torch.device``.

Every stage (extract, train, evaluate, calibrate, detect, demo) takes a device spec and resolves it here,
so ``auto`` means the same everywhere (the first visible CUDA device when torch sees one, else the CPU)
and asking for a GPU on a machine without one fails with one clear message, before any work starts.
What a run used is recorded with :func:`device_info` (provenance, manifest rows, model files).

Models and files are device-neutral: model files and checkpoints are read with ``map_location="cpu"``
(:func:`damvad.utils.load_torch_file`) and then moved, so a head trained on a GPU loads on a CPU-only
machine and the other way round.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

import torch

DeviceSpec = str | torch.device | None
SPECS = "auto, cpu, cuda or cuda:N"


def _no_cuda_reason() -> str:
    """Why torch sees no CUDA device, in words a user can act on."""
    if not torch.backends.cuda.is_built():
        return (f"this torch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch "
                "to use a GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
    return f"torch {torch.__version__} was built with CUDA but sees no GPU{hint}: no driver, or no device visible"


def resolve_device(spec: DeviceSpec = "auto") -> torch.device:
    """``auto`` (or None): ``cuda:0`` when torch sees a CUDA device, else ``cpu``; ``cpu``; ``cuda[:N]``.

    A CUDA spec is checked now (a ``ValueError`` that says why there is no such GPU), and always comes
    back with its index, so what a run records names the exact device (``cuda:1``, not ``cuda``).
    """
    if isinstance(spec, torch.device):
        text = str(spec)
    elif spec is None:
        text = "auto"
    elif isinstance(spec, str):
        text = spec.strip().lower()
    else:
        raise ValueError(f"device must be one of {SPECS}, got {spec!r}")
    if text == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "gpu":
        text = "cuda"
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type != "cuda":
        raise ValueError(f"device must be one of {SPECS}, got {spec!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {text!r} asked for, but {_no_cuda_reason()}; use --device cpu (or auto)")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if device.index is None else device.index
    if not 0 <= index < count:
        raise ValueError(f"device {text!r} asked for, but torch sees {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def is_cuda(device: DeviceSpec) -> bool:
    return resolve_device(device).type == "cuda"


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a module's parameters are (the CPU for a module without any): its inputs go there."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def device_info(device: DeviceSpec) -> dict[str, Any]:
    """What a run records about the device it used: ``device`` ("cpu", "cuda:0") and its model name."""
    device = resolve_device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"device": str(device), "device_name": props.name,
                "device_memory_gib": round(props.total_memory / 2**30, 1),
                "cuda_version": str(torch.version.cuda)}
    return {"device": "cpu", "device_name": _cpu_name(), "cpu_count": os.cpu_count() or 1, "cpu_isa": cpu_isa()}


def _cpu_name() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags from /proc/cpuinfo (``amx_int8``, ``avx512_vnni`` ...); empty where it cannot be
    read (not Linux): the one place run-time CPU features are read."""
    return frozenset(_cpuinfo_field("flags").split())


VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})  # int8 dot products without saturation (AMX has its own)


def cpu_isa() -> str:
    """This CPU's units for I3D's int8 and bf16 arithmetic, in words ("AVX-512, bf16, VNNI, no AMX"): a model
    name alone does not tell them apart (two "AMD EPYC" machines here ran OpenVINO int8 at ~320 and ~89
    frames/s: AVX-512 with VNNI, and AVX2 only). Recorded with every run and speed figure."""
    flags = cpu_flags()
    if not flags:
        return "unknown"
    words = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"]
    for name, keys in (("bf16", {"avx512_bf16"}), ("VNNI", VNNI_FLAGS)):
        words.append(name if keys & flags else f"no {name}")
    amx = sorted(f for f in flags if f.startswith("amx"))
    words.append("AMX: " + " ".join(amx) if amx else "no AMX")
    return ", ".join(words)


def cpu_int8_fast() -> bool:
    """Whether this CPU has the units that run int8 I3D ~4x faster than AVX2 alone (AVX-512 VNNI or AMX: ~320
    against ~89 frames/s on 2 cores here); unknown flags count as fast (nothing is made smaller on a guess)."""
    flags = cpu_flags()
    return not flags or bool({"avx512_vnni", "amx_int8"} & flags)


def cpu_runs_bf16() -> bool:
    """Whether torch's CPU convolutions run bf16 natively (oneDNN: AVX-512 or AMX). Where they do not (AVX2 only),
    bf16 is emulated: an I3D snippet took over 6 minutes against 3 s in fp32 on an AVX2-only AMD EPYC."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # not in this torch build: the CPU's flags (unknown: not refused)
        flags = cpu_flags()
        return not flags or bool({"avx512f", "avx512_bf16", "amx_bf16"} & flags)


def _cpuinfo_field(name: str) -> str:
    """The first ``name`` line's value in /proc/cpuinfo ('' when absent or unreadable)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def free_memory(device: DeviceSpec) -> int | None:
    """Bytes free on a CUDA device right now (None on the CPU)."""
    device = resolve_device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def synchronize(device: DeviceSpec) -> None:
    """Wait for queued GPU work (timings); nothing on the CPU."""
    device = resolve_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["SPECS", "VNNI_FLAGS", "DeviceSpec", "cpu_int8_fast", "cpu_isa", "cpu_runs_bf16", "device_info",
           "free_memory", "is_cuda", "resolve_device", "synchronize"]
