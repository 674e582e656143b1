"""Every choice a user makes and every stage default, defined once.

The command line's ``choices=``, the config checks (``limits``) and the help texts derive from these
names; nothing else spells them out. Plain values only (no torch, no I/O): the parser reads this module
before anything heavy is imported.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------- I3D backends
BACKENDS: tuple[str, ...] = ("openvino", "torch")
DEFAULT_BACKEND = "openvino"  # the fastest measured on the CPU (benchmarks/README.md)
CPU_PRECISIONS: dict[str, tuple[str, ...]] = {"openvino": ("fp32", "bf16", "int8"), "torch": ("fp32", "bf16")}
CUDA_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")  # the torch backend on a CUDA device
DEFAULT_CUDA_PRECISION = "fp16"
# every precision some backend runs on some device: what a config or the command line may ask for (fp16 on
# the CPU is refused when the device is known, with its reason: damvad.backends.resolve)
PRECISIONS: tuple[str, ...] = tuple(dict.fromkeys([*CPU_PRECISIONS["openvino"], *CUDA_PRECISIONS]))
FP16_NEEDS_CUDA = ("--precision fp16 needs a CUDA device, and this runs on the CPU (torch sees no CUDA device, or "
                   "--device cpu was given); on the CPU use --precision bf16 or fp32")

# --------------------------------------------------------------------------------------- features
CROPS: tuple[str, ...] = ("center", "5", "10")  # crops averaged per snippet (damvad.video.CROP_NAMES names them)
DTYPES: tuple[str, ...] = ("float32", "float16")  # storage dtype of feature files
ENGINES: tuple[str, ...] = ("local", "ray")  # where extraction runs
CONNECT_TIMEOUT_S = 30.0  # seconds for a Ray cluster to complete Ray's handshake (--connect-timeout)
DEVICES = "auto | cpu | cuda[:N]"  # device specs (damvad.device.resolve_device reads them)

# ------------------------------------------------------------------------------------------ model
VARIANTS: tuple[str, ...] = ("mlp", "lstm", "dist-channel", "cov-channel", "dist", "cov")  # Table 1's rows
# which stored crop a training step takes: center (crop 0, the paper's) or each (a random crop per video)
CROP_SAMPLING: tuple[str, ...] = ("center", "each")
NUM_CLIPS = 16  # C, clips per video in training and the offline protocol (the paper's; the released code: 32)

# ------------------------------------------------------------------------------- scoring and alerts
PROTOCOLS: tuple[str, ...] = ("offline", "online")
SCORES: tuple[str, ...] = ("D", "wD")
ROW_FORMATS: tuple[str, ...] = ("csv", "jsonl")  # detect's per-clip rows
FAR = 0.01  # share of normal frames allowed to alert (calibrate)
CLOSE_AFTER = 2.0  # seconds below the threshold that end an alert event
UNCALIBRATED_THRESHOLD = 0.5  # the alert threshold of a model never calibrated (scores are in [0, 1])
SNIPPETS_PER_CLIP = 1  # online clip length when nothing was calibrated
