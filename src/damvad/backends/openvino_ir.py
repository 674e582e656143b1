"""The OpenVINO backend's models: I3D converted once to OpenVINO IR, quantized to int8, cached on disk.

* fp32: the converted model as is (features equal eager torch to ~1e-6 relative); bf16 runs the same IR;
* int8: NNCF post-training quantization (:func:`quantize_i3d`) on calibration snippets that the caller
  passes in (:class:`CalibrationData`; damvad's own: :mod:`damvad.extraction.calibration`), what stays
  unquantized runs in bf16.

The cache (``<damvad cache>/openvino/<key>/``: ``model.xml``, ``model.bin``, ``meta.json``) is keyed by the
weights' sha256, the precision, the input shape, the conversion code's version and, for int8, the
calibration set and quantization settings; each entry is written to a temporary folder and renamed into
place, so a killed run never leaves half a model and a warm start is a read + compile (~1 s); processes that
need the same missing entry at once (Ray workers on one node, parallel extractions) build it once, the others
wait for it (:func:`building`). The runtime
that runs an entry is :mod:`damvad.backends.openvino`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from damvad.utils import atomic_write_json, cache_dir

log = logging.getLogger(__name__)

CONVERSION_VERSION = 3  # bump when convert_i3d or quantize_i3d change what they produce (keys the cache)
FEATURES, LOGITS, VIDEO = "features", "logits", "video"


def _ov() -> Any:
    import openvino

    return openvino


@dataclass(frozen=True)
class QuantizationSettings:
    """How int8 is made. The defaults are the measured best (benchmarks/README.md, bench_backends.py)."""

    preset: str = "performance"  # or "mixed" (asymmetric activations: measured less accurate here)
    # Conv3d_1a in bf16 (True) or int8: it is 24 % of the FLOPs but 40 % of int8's time when left in bf16
    keep_first_conv: bool = False
    # The input quantizer (there when the first convolution is int8): "pixels" pins it to [-1, 1] in 256
    # levels, which is exactly the uint8 pixel grid (p / 127.5 - 1), so the input is not rounded at all;
    # "calibrated" keeps NNCF's range from the calibration snippets (it clips the brightest and darkest
    # pixels and rounds the rest: measured min cosine 0.9969 vs 0.9985 pinned).
    input_range: str = "pixels"
    fast_bias_correction: bool = True
    # NNCF's bias correction shifts each layer's bias by the quantization error's mean on the calibration set:
    # wrong for footage unlike it (measured: it alone costs most of int8's error on real clips), so off.
    bias_correction: bool = False
    # NNCF's overflow fix ("first_layer", its default; "enable"; "disable"): 7-bit weights where int8 dot
    # products could saturate on CPUs without VNNI. "auto": "disable" where the CPU has VNNI (its dot
    # products do not saturate; measured more accurate), else NNCF's "first_layer". Resolved on creation.
    overflow_fix: str = "auto"
    bf16_blocks: tuple[str, ...] = ()  # I3D blocks kept in bf16, e.g. ("Mixed_5c", "Logits")
    smooth_quant_conv: float | None = None  # SmoothQuant alpha for convolutions (None: NNCF's default, off)
    # Activation ranges over the calibration set: "mean_minmax" (NNCF's default: the mean over snippets of
    # each one's min / max, so the busiest snippets clip), "minmax" (global min / max), "histogram".
    activation_range: str = "mean_minmax"
    synthetic: int | None = None  # calibration scenes (None: the built-in default)
    per_video: int = 8
    videos: tuple[str, ...] = field(default_factory=tuple)  # calibration videos (empty: built-in default)

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():  # refused when made, not after minutes of calibration
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be {' or '.join(map(repr, allowed))}, got {value!r}")
        if self.overflow_fix == "auto":  # the cache key and the provenance record the resolved value
            object.__setattr__(self, "overflow_fix", "disable" if cpu_has_vnni() else "first_layer")


# The values each string setting takes (NNCF's enums behind them: quantize_i3d, advanced_parameters).
CHOICES: dict[str, tuple[str, ...]] = {
    "preset": ("performance", "mixed"), "input_range": ("pixels", "calibrated"),
    "overflow_fix": ("auto", "first_layer", "enable", "disable"),
    "activation_range": ("mean_minmax", "minmax", "histogram"),
}


def cpu_has_vnni() -> bool:
    """Whether this CPU has VNNI int8 dot products (AVX512-VNNI, AVX-VNNI or AMX); False when unknown (not
    Linux): NNCF's cautious default."""
    from damvad.device import VNNI_FLAGS, cpu_flags

    return bool((VNNI_FLAGS | {"amx_int8"}) & cpu_flags())


# Settings that, at these values, leave NNCF's own behaviour unchanged: left out of the cache key, so a
# model quantized before the option existed keeps its key (and its cache entry).
NNCF_DEFAULTS: dict[str, Any] = {"bias_correction": True, "overflow_fix": "first_layer", "bf16_blocks": (),
                                 "smooth_quant_conv": None,
                                 "activation_range": "mean_minmax", "input_range": "calibrated"}


def weights_identity(checkpoint: str | Path | None, model: Any = None) -> str:
    """The sha256 that keys the cache, without loading the weights when they are the known checkpoint."""
    if model is not None:
        sha = model.weights_sha256
        if sha:
            return str(sha)
        from damvad.i3d import weights_fingerprint

        return weights_fingerprint(model)
    from damvad import weights
    from damvad.utils import sha256_file

    if checkpoint is None:
        weights.fetch_i3d_checkpoint()  # checks the cached file's sha256 (or fetches it)
        return weights.CKPT_SHA256
    return sha256_file(checkpoint)


# --------------------------------------------------------------------------------------- conversion


def convert_i3d(model: Any, num_frames: int = 64, batch: int = 1) -> Any:
    """An ``openvino.Model`` of I3D (BN folded) for float input (batch, 3, num_frames, 224, 224) in [-1, 1],
    outputs ``features`` (batch, t, 1024) and ``logits`` (batch, classes)."""
    import torch

    from damvad.i3d import INPUT_SIZE, traceable_i3d

    ov = _ov()
    shape = (batch, 3, num_frames, INPUT_SIZE, INPUT_SIZE)
    graph = traceable_i3d(model)
    with torch.no_grad():
        ov_model = ov.convert_model(graph, example_input=torch.zeros(shape), input=[shape])
    ov_model.inputs[0].get_tensor().set_names({VIDEO})
    ov_model.outputs[0].get_tensor().set_names({FEATURES})
    ov_model.outputs[1].get_tensor().set_names({LOGITS})
    plain_max_pools(ov_model)
    return ov_model


def plain_max_pools(ov_model: Any) -> int:
    """Replace the converter's MaxPool-14 (values + indices) by opset-1 MaxPool where the indices are unused.

    The CPU plugin's int8 transformations do not pass through the two-output pool: measured, the pools
    between I3D's stages and the 1x1 convolutions after them ran in bf16 with a reorder of the unused indices.
    The same windows: dilation 1, and torch's ceil mode equals opset 1's when nothing is padded."""
    import openvino.opset1 as op1

    replaced = 0
    for node in ov_model.get_ordered_ops():
        if node.get_type_name() != "MaxPool" or node.get_output_size() != 2 or node.output(1).get_target_inputs():
            continue
        attrs = node.get_attributes()
        rounding = attrs["rounding_type"]
        padded = any(attrs["pads_begin"]) or any(attrs["pads_end"])
        if any(d != 1 for d in attrs["dilations"]) or (rounding == "ceil_torch" and padded):
            continue
        pool = op1.max_pool(node.input_value(0), attrs["strides"], attrs["pads_begin"], attrs["pads_end"],
                            attrs["kernel"], "ceil" if rounding == "ceil_torch" else rounding)
        pool.set_friendly_name(node.get_friendly_name())
        node.output(0).replace(pool.output(0))
        replaced += 1
    ov_model.validate_nodes_and_infer_types()
    return replaced


def first_convolution(ov_model: Any) -> str:
    """Friendly name of the first Convolution in topological order (Conv3d_1a_7x7)."""
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() == "Convolution":
            return op.get_friendly_name()
    raise ValueError("the model has no Convolution")


def quantize_i3d(ov_model: Any, snippets: list[np.ndarray], settings: QuantizationSettings) -> Any:
    """int8 by NNCF post-training quantization over ``snippets`` (float (1, 3, T, 224, 224) each)."""
    os.environ.setdefault("NNCF_DISABLE_TELEMETRY", "1")  # nothing may phone home
    import nncf

    preset = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}
    quantized = nncf.quantize(
        ov_model,
        nncf.Dataset(snippets),
        preset=preset[settings.preset],
        subset_size=len(snippets),
        fast_bias_correction=settings.fast_bias_correction,
        ignored_scope=ignored_scope(ov_model, settings),
        advanced_parameters=advanced_parameters(settings),
    )
    if not settings.keep_first_conv and settings.input_range == "pixels":
        pin_input_quantizer(quantized)
    return quantized


def pin_input_quantizer(ov_model: Any) -> None:
    """Set the quantizer on the model input to [-1, 1] in 256 levels: I3D's input is p / 127.5 - 1 for uint8
    pixels p, so the quantizer's grid -1 + 2q / 255 holds every pixel exactly (q = p)."""
    import openvino.opset13 as ops

    pinned = 0
    for parameter in ov_model.get_parameters():
        for target in parameter.output(0).get_target_inputs():
            node = target.get_node()
            if node.get_type_name() != "FakeQuantize":
                continue
            levels = node.get_attributes()["levels"]
            if levels != 256:
                raise RuntimeError(f"the input quantizer has {levels} levels, not 256")
            for port, value in ((1, -1.0), (2, 1.0), (3, -1.0), (4, 1.0)):  # input low/high, output low/high
                node.input(port).replace_source_output(ops.constant(np.float32(value)).output(0))
            pinned += 1
    if not pinned:
        raise RuntimeError("NNCF put no quantizer on the model input; nothing to pin (is the first "
                           "convolution in the ignored scope?)")
    ov_model.validate_nodes_and_infer_types()


_BLOCK = r"__module\.net\.{}[./]"  # an op inside the traced I3D block {} (its friendly-name prefix)


def ignored_scope(ov_model: Any, settings: QuantizationSettings) -> Any:
    """What stays in bf16: the first convolution and the named I3D blocks (``settings.bf16_blocks``)."""
    import nncf

    names = [first_convolution(ov_model)] if settings.keep_first_conv else []
    found = (re.match(_BLOCK.format(r"(\w+)"), op.get_friendly_name()) for op in ov_model.get_ordered_ops())
    blocks = sorted({m.group(1) for m in found if m})
    unknown = [b for b in settings.bf16_blocks if b not in blocks]
    if unknown:
        raise ValueError(f"bf16_blocks: no I3D block {unknown}; the blocks are {blocks}")
    patterns = [_BLOCK.format(re.escape(b)) for b in settings.bf16_blocks]
    return nncf.IgnoredScope(names=names, patterns=patterns) if names or patterns else None


def advanced_parameters(settings: QuantizationSettings) -> Any:
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet as Ranges

    fixes = {"first_layer": OverflowFix.FIRST_LAYER, "enable": OverflowFix.ENABLE, "disable": OverflowFix.DISABLE}
    ranges = {"mean_minmax": Ranges.MEAN_MINMAX, "minmax": Ranges.MINMAX, "histogram": Ranges.HISTOGRAM}
    params = AdvancedQuantizationParameters(overflow_fix=fixes[settings.overflow_fix],
                                            disable_bias_correction=not settings.bias_correction,
                                            activations_range_estimator_params=ranges[settings.activation_range])
    if settings.smooth_quant_conv is not None:
        params.smooth_quant_alphas = AdvancedSmoothQuantParameters(convolution=settings.smooth_quant_conv)
    return params


# --------------------------------------------------------------------------------------------- cache


def _versions() -> dict[str, str]:
    import nncf  # noqa: F401 -- version only

    from damvad import __version__

    return {"openvino": str(_ov().get_version()), "nncf": str(nncf.__version__), "damvad": __version__}


def cache_key(weights_sha256: str, precision: str, shape: tuple[int, ...], calibration: dict[str, Any] | None,
              settings: QuantizationSettings | None) -> tuple[str, dict[str, Any]]:
    """(folder name, the dict it hashes). fp32 and bf16 share one IR (bf16 is a compile-time hint)."""
    ir_precision = "int8" if precision == "int8" else "fp32"
    ident: dict[str, Any] = {
        "weights_sha256": weights_sha256, "precision": ir_precision, "input_shape": list(shape),
        "conversion": CONVERSION_VERSION, "openvino": str(_ov().get_version()).split("-")[0],
    }
    if ir_precision == "int8":
        assert settings is not None and calibration is not None
        ident["quantization"] = {k: v for k, v in asdict(settings).items()
                                 if k != "videos" and not (k in NNCF_DEFAULTS and v == NNCF_DEFAULTS[k])}
        ident["calibration"] = calibration
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return f"i3d-{ir_precision}-{weights_sha256[:12]}-{'x'.join(map(str, shape))}-{digest}", ident


def model_cache_root() -> Path:
    return cache_dir() / "openvino"


def write_entry(final: Path, ov_model: Any, meta: dict[str, Any]) -> None:
    """Save an IR (``model.xml`` / ``.bin``) and its meta.json into ``final``: a temporary sibling folder,
    then renamed into place (atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        _ov().save_model(ov_model, str(tmp / "model.xml"), compress_to_fp16=False)
        atomic_write_json(tmp / "meta.json", meta)
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same entry first: keep theirs
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class CalibrationData(Protocol):
    """Where int8's calibration snippets come from: passed in by the caller (damvad's own, user videos or a
    built-in set: :data:`damvad.extraction.calibration.VIDEO_CALIBRATION`)."""

    def key(self, settings: QuantizationSettings) -> dict[str, Any]:
        """What identifies the snippets ``settings`` asks for (``videos``, ``synthetic``, ``per_video``),
        without decoding them: it keys the int8 cache."""
        ...

    def snippets(self, settings: QuantizationSettings, num_frames: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        """(float (1, 3, T, 224, 224) snippets in [-1, 1], their provenance)."""
        ...


def cached_model_dir(
    precision: str,
    *,
    checkpoint: str | Path | None = None,
    model: Any = None,
    num_frames: int = 64,
    batch: int = 1,
    settings: QuantizationSettings | None = None,
    calibration_data: CalibrationData | None = None,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """The cache folder of this model (converted / quantized now if missing) and its meta.json. int8 needs
    ``calibration_data``."""
    sha = weights_identity(checkpoint, model)
    shape = (batch, 3, num_frames, 224, 224)
    settings = settings or QuantizationSettings()
    calib_key = None
    if precision == "int8":
        if calibration_data is None:
            raise ValueError("int8 needs calibration data (damvad.extraction.calibration.VIDEO_CALIBRATION: the "
                             "built-in set or the user's videos)")
        calib_key = calibration_data.key(settings)
    name, ident = cache_key(sha, precision, shape, calib_key, settings)
    folder = model_cache_root() / name
    if not _complete(folder):
        with building(folder):
            if not _complete(folder):  # else another process built it while this one waited
                _build_entry(folder, precision, ident, checkpoint=checkpoint, model=model, num_frames=num_frames,
                             batch=batch, settings=settings, calibration_data=calibration_data, progress=progress)
    return folder, json.loads((folder / "meta.json").read_text())


def _complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in ("meta.json", "model.xml", "model.bin"))


@contextmanager
def building(folder: Path) -> Iterator[None]:
    """Hold the build lock of one cache entry (``folder`` + ``.lock``, an exclusive ``flock``; the system drops
    it when its process dies, so a killed build never blocks the next). Without ``fcntl`` (Windows): no lock,
    and two builders both build, the second keeping the first's entry (:func:`write_entry`)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another process that is building %s", folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_entry(folder: Path, precision: str, ident: dict[str, Any], *, checkpoint: str | Path | None,
                 model: Any, num_frames: int, batch: int, settings: QuantizationSettings,
                 calibration_data: CalibrationData | None, progress: bool) -> None:
    """Convert (fp32) or quantize (int8, from the fp32 entry) I3D and write it to ``folder``."""
    say = log.warning if progress else log.info
    t0 = time.perf_counter()
    if calibration_data is not None and precision == "int8":
        fp32_dir, _ = cached_model_dir("fp32", checkpoint=checkpoint, model=model, num_frames=num_frames,
                                       batch=batch, progress=progress)
        say("quantizing I3D to int8 (once; cached in %s)", folder)
        snippets, provenance = calibration_data.snippets(settings, num_frames)
        t1 = time.perf_counter()
        ov_model = quantize_i3d(_ov().Core().read_model(str(fp32_dir / "model.xml")), snippets, settings)
        extra = {"calibration": provenance, "quantization": asdict(settings),
                 "quantize_seconds": round(time.perf_counter() - t1, 1)}
    else:
        from damvad.i3d import load_i3d

        say("converting I3D to OpenVINO (once; cached in %s)", folder)
        net = model if model is not None else load_i3d(checkpoint)
        ov_model = convert_i3d(net, num_frames, batch)
        extra = {}
    meta = {**ident, **extra, "versions": _versions(), "seconds": round(time.perf_counter() - t0, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_entry(folder, ov_model, meta)
# ------------------------------------------------------------------------------------------- backend
