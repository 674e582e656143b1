"""``damvad demo``: the whole system on a generated dataset, on a fresh machine, in about 10 minutes.

1. generate synthetic surveillance videos (video-level labels for training, frame labels for testing);
2. extract real I3D features (pretrained Kinetics-400 weights, the fast bf16 path);
3. train Dist-DAM and the MLP baseline (Table 1's l1) from video-level labels only;
4. evaluate both on the held-out test split (frame AUC, AP, false alarms; ROC and timelines);
5. calibrate Dist-DAM's alert threshold on held-out normal training videos, then run live detection on
   one test video and write its report;
6. print a summary and where everything is.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damvad.utils import atomic_write_json, provenance


@dataclass(frozen=True)
class DemoPlan:
    """Sized for ~10 minutes on 2 CPU cores: ~12k frames (I3D bf16 runs at ~100 frames/s on such a CPU)
    and a 256-unit head (`damvad train` defaults to the paper's 1024: 4x the LSTM width, ~10x slower)."""

    n_train: tuple[int, int] = (16, 16)  # normal, anomalous
    n_test: tuple[int, int] = (8, 8)
    num_frames: tuple[int, int] = (192, 320)
    size: tuple[int, int] = (320, 240)
    iterations_dam: int = 300
    iterations_mlp: int = 300
    batch: int = 8  # anomalous and normal bags per mini-batch
    hidden: int = 256
    precision: str = "bf16"


FULL = DemoPlan()
QUICK = DemoPlan(n_train=(5, 5), n_test=(3, 3), num_frames=(160, 224), iterations_dam=40, iterations_mlp=40,
                 batch=3, hidden=128)


def _step(msg: str) -> float:
    print(f"\n== {msg}", flush=True)
    return time.perf_counter()


def run_demo(out: str | Path = "demo_out", quick: bool = False, progress: bool = True) -> dict[str, Any]:
    from damvad.calibrate import calibrate
    from damvad.detect import Detector, RowWriter, write_report
    from damvad.evaluate import EvalConfig, evaluate, format_table
    from damvad.extract import extract
    from damvad.synth import generate_dataset
    from damvad.train import TrainConfig, train

    plan = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    t = _step("1/6 generating a synthetic surveillance dataset")
    data = generate_dataset(out / "data", n_train_normal=plan.n_train[0], n_train_anomalous=plan.n_train[1],
                            n_test_normal=plan.n_test[0], n_test_anomalous=plan.n_test[1],
                            num_frames=plan.num_frames, size=plan.size, seed=0, progress=progress)
    timings["generate_s"] = time.perf_counter() - t

    t = _step(f"2/6 extracting I3D features ({plan.precision}, centre crop; first use compiles the model)")
    report = extract([data], out / "features", crops="center", precision=plan.precision, progress=progress)
    print(report.summary())
    if not report.ok:
        raise RuntimeError("feature extraction failed for some generated videos (see above)")
    timings["extract_s"] = time.perf_counter() - t

    runs = {}
    for variant, iterations in (("dist", plan.iterations_dam), ("mlp", plan.iterations_mlp)):
        t = _step(f"3/6 training {'Dist-DAM' if variant == 'dist' else 'the MLP baseline'} "
                  f"({iterations} iterations, video-level labels only)")
        run_dir = out / "runs" / variant
        cfg = TrainConfig(dataset=str(data), features=str(out / "features"), out=str(run_dir), variant=variant,
                          model={"hidden": plan.hidden}, iterations=iterations, batch_anomalous=plan.batch,
                          batch_normal=plan.batch, val_fraction=0.2, eval_every=max(10, iterations // 10),
                          checkpoint_every=max(10, iterations // 10), lr=1e-4 if variant == "dist" else 1e-3)
        runs[variant] = train(cfg, resume=True, progress=progress)
        timings[f"train_{variant}_s"] = time.perf_counter() - t

    t = _step("4/6 evaluating on the held-out test split (frame labels used only here)")
    ev = evaluate(EvalConfig(dataset=str(data), features=str(out / "features"),
                             runs=[str(out / "runs" / "dist"), str(out / "runs" / "mlp")], out=str(out / "eval"),
                             timelines=4), progress=progress)
    print(format_table(ev))
    timings["evaluate_s"] = time.perf_counter() - t

    t = _step("5/6 calibrating the alert threshold and running live detection on a test video")
    model_path = out / "runs" / "dist" / "seed0" / "model.pt"
    threshold = calibrate(model_path, out / "features", dataset=str(data), split="train", far=0.05)
    test_video = sorted((data / "test" / "anomalous").glob("*.mp4"))[0]
    det = Detector(model_path, precision=plan.precision)
    live_dir = out / "live"
    live_dir.mkdir(parents=True, exist_ok=True)
    with open(live_dir / f"{test_video.stem}.csv", "w") as fh:
        result = det.run(test_video, writer=RowWriter(fh, "csv"), progress=progress)
    live_paths = write_report(result, live_dir, det.threshold, test_video)
    timings["live_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started

    _step("6/6 summary")
    summary = {
        "provenance": provenance(),
        "timings": timings,
        "threshold": threshold,
        "live": {"video": str(test_video), "frames": result.frames, "seconds": result.seconds,
                 "events": [e.__dict__ for e in result.events], **live_paths},
        "test": {label: run["protocols"] for label, run in ev["runs"].items()},
        "paths": {"data": str(data), "features": str(out / "features"), "runs": str(out / "runs"),
                  "eval": str(out / "eval"), "live": str(live_dir)},
    }
    atomic_write_json(out / "summary.json", summary)
    for label, run in ev["runs"].items():
        for protocol in ("offline", "online"):
            m = run["protocols"][protocol]
            far = (m.get("far_at_threshold") or {}).get("far")
            print(f"{label:>11} {protocol:<7}: frame AUC {100 * (m['frame_auc'] or 0):.1f}%  "
                  f"AP {100 * (m['frame_ap'] or 0):.1f}%  false alarms at 0.5: {100 * (far or 0):.2f}%")
    print(f"live detection on {test_video.name}: {result.frames} frames in {result.seconds:.1f} s, "
          f"{len(result.events)} alert event(s) at threshold {det.threshold:.3f}")
    print(f"everything is in {out}/: summary.json, eval/roc.png, eval/timelines/, live/ "
          f"(timeline, events, annotated video); total {timings['total_s'] / 60:.1f} min")
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return summary
