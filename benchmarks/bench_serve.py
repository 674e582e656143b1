"""How many 25 fps cameras one machine serves in real time with ``damvad serve`` (int8 by default), and the
latency from an event's first frame to its alert (and to a webhook's receipt).

Each camera plays the same generated 60 s scene file at 25 fps (looped), as a camera would send it; the
monitor (the shared I3D queue, one Dist-DAM head, SQLite, pictures, a local webhook) runs for --seconds
with 1, 2, ... cameras until one falls behind: a camera keeps up when it scored >= 97 % of the frames its
source sent (frames scored per second between its first and last clip >= 97 % of 25) and its
snippet-to-score latency did not grow over the run (second half's median within 1 s of the first's). The head is a
randomly initialised full-size Dist-DAM (its cost does not depend on its weights) with the threshold at
the median of its scores on the scene, so events open and close all the time; "event latency" is the
time from the arrival of an event's first frame (the first frame of its first clip at or above the
threshold) to the event being committed and announced, and to the webhook receiving it.

Usage: python benchmarks/bench_serve.py [--seconds 40] [--max-cameras 12] [--precision int8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from damvad.contract import FeatureContract
from damvad.devtools.bench import OtherLoad, closing_line
from damvad.devtools.webhook import Receiver
from damvad.model import build_model
from damvad.modelfile import ModelCard, save_model_file
from damvad.serve.config import ServeConfig
from damvad.serve.monitor import Monitor
from damvad.synth import EventSpec, synthetic_stream, write_video


def scene(folder: Path) -> Path:
    path = folder / "scene.mp4"
    events = [EventSpec("explosion", 500, 650), EventSpec("fight", 1000, 1200)]
    write_video(path, synthetic_stream(1500, seed=11, events=events), 25)
    return path


def run(cfg: ServeConfig, cameras: int, seconds: float, hook: Receiver) -> dict[str, float]:
    """One step: ``cameras`` copies of the scene for ``seconds``; per-camera rates, latencies, events."""
    video = cfg.cameras[0]["source"]
    cfg.cameras = [{"name": f"cam{i}", "source": video, "realtime": True, "loop": True} for i in range(cameras)]
    cfg.data = tempfile.mkdtemp(prefix="bench-serve-")  # a new database: event ids start again at 1
    hook.received.clear()
    hook.times.clear()
    monitor = Monitor(cfg)
    load = OtherLoad()
    monitor.start()
    time.sleep(seconds)
    stats: list[tuple[float, list[float]]] = []
    for cam in monitor.cameras.values():
        h = list(cam.history)
        # frames scored per second between the first and the last clip: 25 when the camera keeps up
        rate = (h[-1].end_frame - h[0].end_frame) / (h[-1].ts - h[0].ts) if len(h) >= 2 else 0.0
        lat = [p.ts - (cam.ring.arrival(p.end_frame - 1) or p.ts) for p in h]  # snippet end -> score
        stats.append((rate, lat))
    events = monitor.store.events(limit=10_000)
    monitor.stop()
    alert = [e.alert_ts - e.start_ts for e in events]
    arrived = {m["after"]["id"]: t for m, t in zip(hook.received, hook.times, strict=True) if m["type"] == "new"}
    hooked = [arrived[e.id] - e.start_ts for e in events if e.id in arrived]
    min_rate = min(rate for rate, _ in stats)
    growing = max(statistics.median(lat[len(lat) // 2:]) - statistics.median(lat[: len(lat) // 2])
                  for _, lat in stats if len(lat) >= 4)
    all_lat = [x for _, lat in stats for x in lat]
    return {"cameras": cameras, "min_fps": min_rate, "score_latency_med_s": statistics.median(all_lat),
            "score_latency_max_s": max(all_lat), "latency_growth_s": growing, "events": len(events),
            "event_alert_med_s": statistics.median(alert) if alert else float("nan"),
            "event_alert_max_s": max(alert) if alert else float("nan"),
            "event_webhook_med_s": statistics.median(hooked) if hooked else float("nan"),
            "other_load_cores": load.cores(), "realtime": min_rate >= 0.97 * 25 and growing < 1.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=40.0, help="per camera count (< 60: the scene's length)")
    ap.add_argument("--max-cameras", type=int, default=12)
    ap.add_argument("--start", type=int, default=1, help="first camera count")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--precision", default="int8")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    video = scene(tmp)
    torch.manual_seed(0)
    model = save_model_file(tmp / "dist.pt", build_model("dist"), ModelCard(features=FeatureContract(crops="center")))
    hook = Receiver()
    cfg = ServeConfig(model_file=str(model), backend=args.backend, precision=args.precision,
                      cameras=[{"source": str(video)}], webhooks=[hook.url])
    probe = cfg.detector()  # the threshold: the median score of the scene, so events come and go
    scores = [r.score for r in probe.run(video, progress=False).rows]
    cfg.threshold = float(np.median(scores))
    print(f"{os.cpu_count()} CPUs, {args.backend} {args.precision}, threshold {cfg.threshold:.4f} (median score)",
          flush=True)
    results: dict[str, float] = {}
    best = 0
    for n in range(args.start, args.max_cameras + 1):
        r = run(cfg, n, args.seconds, hook)
        print(f"{n} camera(s): slowest {r['min_fps']:.1f} frames/s scored, snippet->score latency median "
              f"{r['score_latency_med_s']:.2f} s (max {r['score_latency_max_s']:.2f}, "
              f"growth {r['latency_growth_s']:+.2f}), "
              f"{r['events']} events: first frame -> alert median {r['event_alert_med_s']:.2f} s "
              f"(max {r['event_alert_max_s']:.2f}), -> webhook {r['event_webhook_med_s']:.2f} s; other load "
              f"{r['other_load_cores']:.2f} cores; {'real time' if r['realtime'] else 'FALLS BEHIND'}", flush=True)
        if not r["realtime"]:
            break
        best = n
        results = {k: v for k, v in r.items() if k not in ("cameras", "realtime")}
    print(closing_line({"realtime_cameras": best, **{f"at_{best}_{k}": v for k, v in results.items()},
                        "load_avg": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
