"""Where an OpenVINO I3D model spends its time: per-layer times from the CPU plugin (``PERF_COUNT``).

One 64-frame uint8 centre crop of vtest.avi (a random clip without ../shared), run as extraction runs it
(uint8 input scaled inside the graph); ``--reps`` timed calls after two warm-ups, times averaged. Prints the
wall-clock median, the time per I3D block, per (layer type, kernel) and the slowest layers not in int8.

    python benchmarks/profile_openvino.py [--precision int8|bf16|fp32] [--reps 5]
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time

import numpy as np

from damvad.backends.openvino import OpenVINOBackend
from damvad.devtools.bench import real_snippets
from damvad.extraction.calibration import VIDEO_CALIBRATION


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precision", default="int8", choices=["int8", "bf16", "fp32"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    backend = OpenVINOBackend(args.precision, calibration_data=VIDEO_CALIBRATION)
    backend.config["PERF_COUNT"] = True  # compiled on first use, so this takes effect
    snippets = real_snippets(1)[0]
    x = snippets[0] if snippets else np.random.default_rng(0).integers(0, 256, (1, 3, 64, 224, 224), np.uint8)
    backend.warmup(64), backend(x)
    request = backend.request("uint8")
    blocks: dict[str, float] = collections.defaultdict(float)
    kinds: dict[tuple[str, str], float] = collections.defaultdict(float)
    layers: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    walls = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        backend(x)
        walls.append(time.perf_counter() - t0)
        for info in request.get_profiling_info():
            ms = info.real_time.total_seconds() * 1000 / args.reps
            block = re.search(r"__module\.net\.(\w+)", info.node_name)
            blocks[block.group(1) if block else "other"] += ms
            kinds[(info.node_type, info.exec_type)] += ms
            layers[(info.node_name, info.node_type, info.exec_type)] += ms
    total = sum(blocks.values())
    wall = statistics.median(walls)
    print(f"{backend.folder.name}: wall median {wall * 1000:.0f} ms ({64 / wall:.1f} frames/s), "
          f"layers {total:.0f} ms")
    for title, table in (("per block", blocks), ("per layer type / kernel", kinds)):
        print(title + ":")
        for key, ms in sorted(table.items(), key=lambda kv: -kv[1]):
            if ms >= 0.05:
                print(f"  {str(key):<60} {ms:7.1f} ms {100 * ms / total:5.1f} %")
    slow = [(k, ms) for k, ms in sorted(layers.items(), key=lambda kv: -kv[1]) if "I8" not in k[2]][: args.top]
    print("slowest layers not in int8:")
    for (name, kind, impl), ms in slow:
        print(f"  {name[:80]:<80} {kind:<12} {impl:<24} {ms:6.1f} ms")


if __name__ == "__main__":
    main()
