"""``damvad demo``: the whole system on a small slice of the synthetic benchmark, in ~13 minutes on 2 CPU cores.

1. generate ``synth-demo-v4`` (the recipe of ``synth-ucf-v2``: a few cameras shared by normal and
   anomalous videos, events and near misses of every kind, on half-length videos of 8-10 snippets so that
   90 + 90 training videos fit; chosen on other draws of the recipe: benchmarks/demo-dev-study.md), or on a
   CPU without fast int8 units ``synth-demo-v5`` (quarter-length videos, 64 + 64 training: the same minutes);
2. extract real I3D features (pretrained Kinetics-400 weights, the CPU's fastest backend, centre crop);
3. train Dist-DAM and the MLP baseline (Table 1's l1) from video-level labels only, with one config
   that differs only in the variant (and, in the small plan, the budget: Dist-DAM 500 iterations, the cheap
   MLP 1,000) and ``damvad train``'s default selection rule;
4. evaluate both on the test split (frame AUC, AP; ROC and timelines), per variant, beside a
   training-free change detector (what "something changed" alone scores);
5. calibrate Dist-DAM's alert threshold on its held-out normal training videos (a false-alarm rate per
   frame), report the false alarms on the test split at that threshold, then run live detection on one
   test video and write its report;
6. print a summary that says what a demo of this size can and cannot show.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damvad.choices import PROTOCOLS
from damvad.utils import atomic_write_json, provenance

# Fresh demos measured on 2 cores (README.md, "The demo"): most of the time is I3D extraction, whose speed
# depends on the CPU's int8 units, not its model name (both machines were "AMD EPYC").
EXPECTED_TIME = {
    "full": "a fresh demo took 13 min on 2 cores with AVX-512 and VNNI (I3D int8 ~320 frames/s) and 35 min on 2 "
            "AVX2-only cores (~89 frames/s); most of it is I3D feature extraction",
    "small": "a fresh demo took 12.5 min on 2 AVX2-only cores (I3D int8 ~89 frames/s; the full plan took 35 min "
             "there); most of it is I3D feature extraction",
}

SIZE_CAVEAT = (
    "A demo of {videos} test videos and one seed shows that the pipeline works end to end; it cannot "
    "rank the variants (differences of several AUC points between seeds are common at this size). For "
    "that, run `damvad benchmark table1 synth-ucf-v2` (460 videos, every variant, >= 5 seeds, paired "
    "intervals; see benchmarks/README.md)."
)


@dataclass(frozen=True)
class DemoPlan:
    """What the demo generates and trains; the defaults (FULL) are sized for ~13 minutes on 2 CPU cores with AVX-512
    and VNNI (35 on AVX2-only cores: SMALL there) and a 256-unit head (`damvad train` defaults to the paper's 1024:
    4x the LSTM width, ~10x slower)."""

    benchmark: str = "synth-demo-v4"  # 90 + 90 half-length training videos (v3: 24 + 24 of full length;
                                      # benchmarks/demo-dev-study.md, fourth round)
    overrides: tuple[tuple[str, Any], ...] = ()  # generator parameters changed (the quick test's size)
    iterations: int = 1000
    mlp_iterations: int | None = None  # the MLP baseline's budget where it differs (None: ``iterations``)
    batch: int = 10  # anomalous and normal bags per mini-batch (the paper's)
    hidden: int = 256
    precision: str | None = None  # None: the CPU's fastest (damvad.backends.default_precision)
    far: float = 0.05
    val_fraction: float = 0.1  # held out per class (9 + 9 videos): Dist-DAM's threshold is calibrated on them
    dropout: float | None = 0.5  # the heads' dropout before the MLP (None: DAMConfig's 0.2; 0.5 chosen on dev
                                 # draws: benchmarks/demo-dev-study.md, second round)


FULL = DemoPlan()
# CPUs without fast int8 units: ~a third of FULL's frames, Dist-DAM at half the budget (its training is most of the
# time left), the MLP at the whole (~5 s): benchmarks/demo-dev-study.md, seventh round (N)
SMALL = DemoPlan(benchmark="synth-demo-v5", iterations=500, mlp_iterations=1000)
QUICK = DemoPlan(benchmark="synth-demo-v2",
                 overrides=(("n_train_normal", 3), ("n_train_anomalous", 3), ("n_test_normal", 2),
                            ("n_test_anomalous", 2), ("num_frames", (512, 544)), ("size", (224, 168)),
                            ("cameras", 2)),
                 iterations=40, batch=3, hidden=128, val_fraction=0.25)  # 1 + 1 of 3 + 3 held out
PLANS = {"full": FULL, "small": SMALL, "quick": QUICK}


def choose_plan(device: Any) -> str:
    """The plan that fits ~15 minutes here: ``full`` on a CUDA device or a CPU with fast int8 units (AVX-512 VNNI
    or AMX), ``small`` elsewhere, where int8 I3D runs ~4x slower (``full`` took 35 min on an AVX2-only EPYC)."""
    from damvad.device import cpu_int8_fast, is_cuda

    return "full" if is_cuda(device) or cpu_int8_fast() else "small"


def resolve_plan(plan: DemoPlan | str, device: Any) -> tuple[str, DemoPlan]:
    """(name, plan) for a plan, a name in PLANS or ``auto`` (:func:`choose_plan`); another plan is ``custom``."""
    if isinstance(plan, DemoPlan):
        return next((k for k, v in PLANS.items() if v == plan), "custom"), plan
    name = choose_plan(device) if plan == "auto" else plan
    if name not in PLANS:
        raise ValueError(f"unknown demo plan {plan!r}: choose auto, {', '.join(PLANS)}")
    return name, PLANS[name]


@dataclass(frozen=True)
class _Live:
    """The demo's live detection run: its video, the detector's result, the report's paths and threshold."""

    video: Path
    result: Any
    paths: dict[str, Any]
    folder: Path
    threshold: float


def _step(msg: str) -> float:
    print(f"\n== {msg}", flush=True)
    return time.perf_counter()


def demo_params(plan: DemoPlan, draw_seed: int | None = None) -> dict[str, Any]:
    """The generator parameters of ``plan``'s dataset; ``draw_seed`` (not ``None``) replaces only the seed."""
    from damvad.synth.benchmark import benchmark_params

    params = {**benchmark_params(plan.benchmark), **dict(plan.overrides)}
    if draw_seed is not None:
        params["seed"] = int(draw_seed)
    return params


def run_demo(out: str | Path = "demo_out", quick: bool = False, progress: bool = True,
             device: Any = None, draw_seed: int | None = None, plan: DemoPlan | str = "auto") -> dict[str, Any]:
    """Every stage on ``device`` (``None`` / ``auto``: a CUDA device when torch sees one).

    ``draw_seed``: another draw of the same recipe (the generator's ``seed``; ``None``: the benchmark's own, the
    shipped draw), for deciding settings on draws nobody reports. ``plan``: ``auto`` (sized for this machine:
    :func:`choose_plan`), a name in PLANS or a DemoPlan; ``quick`` is the plan ``quick``."""
    from damvad.device import device_info, resolve_device

    dev = resolve_device(device)
    name, plan = resolve_plan("quick" if quick else plan, dev)
    quick = name == "quick"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    params = demo_params(plan, draw_seed)
    print(_machine_line(dev, name), flush=True)
    data = _generate(plan, params, out, quick, progress, timings)
    _extract(plan, data, out, dev, progress, timings)
    for variant in ("dist", "mlp"):
        _train(plan, variant, data, out, dev, progress, timings)
    model_path = out / "runs" / "dist" / "seed0" / "model.pt"
    threshold = _calibrate(plan, model_path, data, out, dev, timings)
    ev, change, live = _evaluate_and_detect(plan, model_path, data, out, dev, progress, timings)
    timings["total_s"] = time.perf_counter() - started

    _step("6/6 summary")
    test_videos = len(list((data / "test").rglob("*.mp4")))
    summary = {
        "provenance": {**provenance(), **device_info(dev)},
        "benchmark": plan.benchmark,
        "draw_seed": draw_seed,  # None: the benchmark's own draw
        "plan": {"name": name, **{k: v for k, v in plan.__dict__.items() if k != "overrides"}},
        "generator": params,
        "timings": timings,
        "threshold": threshold,
        "live": {"video": str(live.video), "frames": live.result.frames, "seconds": live.result.seconds,
                 "events": [e.__dict__ for e in live.result.events], **live.paths},
        "test": {label: run["protocols"] for label, run in ev["runs"].items()},
        "change_detector": change,
        "caveat": SIZE_CAVEAT.format(videos=test_videos),
        "paths": {"data": str(data), "features": str(out / "features"), "runs": str(out / "runs"),
                  "eval": str(out / "eval"), "live": str(live.folder)},
    }
    atomic_write_json(out / "summary.json", summary)
    _print_results(plan, test_videos, ev, change, live)
    print(summary["caveat"])
    print(f"everything is in {out}/: summary.json, eval/roc.png, eval/timelines/, live/ "
          f"(timeline, events, annotated video); total {timings['total_s'] / 60:.1f} min")
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return summary


def _machine_line(dev: Any, plan: str) -> str:
    """What the demo runs on, its plan, and how long that plan took on the machines it was measured on: a
    newcomer knows before the first progress bar."""
    from damvad.device import device_info

    info = device_info(dev)
    where = (f"{info['device_name']} ({info['device']})" if info["device"] != "cpu" else
             f"{info['device_name']}, {info['cpu_count']} cores, {info['cpu_isa']}")
    timing = EXPECTED_TIME.get(plan) if info["device"] == "cpu" else None
    return f"damvad demo on {where}, plan {plan}" + (f": {timing}" if timing else "")


def _generate(plan: DemoPlan, params: dict[str, Any], out: Path, quick: bool, progress: bool,
              timings: dict[str, float]) -> Path:
    """Step 1: the synthetic videos (reused when already there)."""
    from damvad.snippets import SNIPPET_LEN
    from damvad.synth import generate_dataset

    snippets = int(params["num_frames"][0]) // SNIPPET_LEN
    t = _step(f"1/6 generating {plan.benchmark}{' (reduced for --quick)' if quick else ''}: synthetic "
              f"surveillance videos of >= {snippets} snippets with benign changes and frame-exact anomalies")
    data = generate_dataset(out / "data", progress=progress, **params)
    timings["generate_s"] = time.perf_counter() - t
    return data


def _extract(plan: DemoPlan, data: Path, out: Path, dev: Any, progress: bool, timings: dict[str, float]) -> None:
    """Step 2: I3D features of every generated video, centre crop."""
    from damvad.extract import extract

    t = _step(f"2/6 extracting I3D features ({plan.precision or 'the fastest precision here'}, centre crop; the "
              "first use converts the model)")
    report = extract([data], out / "features", crops="center", precision=plan.precision, progress=progress,
                     device=dev)
    print(report.summary())
    if not report.ok:
        raise RuntimeError("feature extraction failed for some generated videos (see above)")
    timings["extract_s"] = time.perf_counter() - t


def _train(plan: DemoPlan, variant: str, data: Path, out: Path, dev: Any, progress: bool,
           timings: dict[str, float]) -> None:
    """Step 3: one variant trained from video-level labels (the same config but the variant)."""
    from damvad.train import TrainConfig, train

    name = "Dist-DAM" if variant == "dist" else "the MLP baseline (Table 1's l1)"
    iterations = plan.mlp_iterations if variant == "mlp" and plan.mlp_iterations else plan.iterations
    t = _step(f"3/6 training {name} ({iterations} iterations, video-level labels only)")
    cfg = TrainConfig(dataset=str(data), features=str(out / "features"), out=str(out / "runs" / variant),
                      variant=variant, model=_model_keys(plan), iterations=iterations,
                      batch_anomalous=plan.batch, batch_normal=plan.batch, val_fraction=plan.val_fraction,
                      eval_every=max(10, iterations // 10), checkpoint_every=max(10, iterations // 10))
    # the default selection rule (damvad.train.SELECTIONS); the held-out videos calibrate the threshold
    train(cfg, resume=True, progress=progress, device=dev)
    timings[f"train_{variant}_s"] = time.perf_counter() - t


def _model_keys(plan: DemoPlan) -> dict[str, Any]:
    """The head's config keys the plan sets (the rest are DAMConfig's defaults)."""
    return {"hidden": plan.hidden, **({} if plan.dropout is None else {"dropout": plan.dropout})}


def _calibrate(plan: DemoPlan, model_path: Path, data: Path, out: Path, dev: Any, timings: dict[str, float]) -> Any:
    """Step 4: Dist-DAM's alert threshold from its held-out normal training videos."""
    from damvad.calibrate import calibrate_model as calibrate

    t = _step("4/6 calibrating Dist-DAM's alert threshold on its held-out normal training videos")
    threshold = calibrate(model_path, out / "features", dataset=str(data), split="train", far=plan.far,
                          device=dev)
    timings["calibrate_s"] = time.perf_counter() - t
    return threshold


def _evaluate_and_detect(plan: DemoPlan, model_path: Path, data: Path, out: Path, dev: Any, progress: bool,
                         timings: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any], _Live]:
    """Step 5: both variants and the change detector on the test split, then live detection on one test video:
    (evaluate's result, the change detector's metrics, the live run)."""
    from damvad.detect import Detector
    from damvad.detections import RowWriter, write_report
    from damvad.evaluate import EvalConfig, evaluate, format_table

    t = _step("5/6 evaluating on the test split (frame labels used only here), then live detection")
    ev = evaluate(EvalConfig(dataset=str(data), features=str(out / "features"),
                             runs=[str(out / "runs" / "dist"), str(out / "runs" / "mlp")], out=str(out / "eval"),
                             timelines=4), progress=progress, device=dev)
    print(format_table(ev))
    change = _change_detector(data, out / "features")
    test_video = sorted((data / "test" / "anomalous").glob("*.mp4"))[0]
    det = Detector(model_path, precision=plan.precision, device=dev)
    live_dir = out / "live"
    live_dir.mkdir(parents=True, exist_ok=True)
    with open(live_dir / f"{test_video.stem}.csv", "w") as fh:
        result = det.run(test_video, writer=RowWriter(fh, "csv"), progress=progress)
    live_paths = write_report(result, live_dir, det.threshold, test_video)
    timings["evaluate_live_s"] = time.perf_counter() - t
    return ev, change, _Live(test_video, result, live_paths, live_dir, det.threshold)


def _print_results(plan: DemoPlan, test_videos: int, ev: dict[str, Any], change: dict[str, Any], live: _Live) -> None:
    """Step 6: the rows per variant beside the change detector, then the live run."""
    print(f"per variant, {test_videos} test videos, one seed (score D), beside a change detector (no training):")
    for protocol in PROTOCOLS:
        m = change[protocol]
        print(f"  {'change':>10} {protocol:<7}: frame AUC {100 * m['frame_auc']:.1f}%  AP {100 * m['frame_ap']:.1f}%  "
              "(L1 between consecutive snippet maps: 'something changed', not 'something anomalous')")
    for label, run in ev["runs"].items():
        for protocol in PROTOCOLS:
            m = run["protocols"][protocol]
            cal = m.get("far_at_calibrated_threshold")
            far = (f"false alarms at the calibrated threshold {cal['threshold']:.3f}: {100 * cal['far']:.1f}% "
                   f"(target {100 * plan.far:.0f}%)" if cal else "no threshold calibrated for this protocol")
            print(f"  {label:>10} {protocol:<7}: frame AUC {100 * (m['frame_auc'] or 0):.1f}%  "
                  f"AP {100 * (m['frame_ap'] or 0):.1f}%  {far}")
    print(f"live detection on {live.video.name}: {live.result.frames} frames in {live.result.seconds:.1f} s, "
          f"{len(live.result.events)} alert event(s) at threshold {live.threshold:.3f}")


def _change_detector(data: Path, features: Path) -> dict[str, dict[str, float]]:
    """Frame AUC / AP of the training-free change detector on the test split, through the one scoring path."""
    from damvad.benchmark.changedet import ChangeDetector
    from damvad.datasets import get_dataset
    from damvad.evaluate import score_split
    from damvad.metrics import evaluate_scores
    from damvad.store import FeatureStore

    dataset, store = get_dataset(data), FeatureStore(features)
    items = dataset.videos("test")
    names, labels = [it.name for it in items], {it.name: it.label for it in items}
    gt = dataset.ground_truths("test", store)
    out = {}
    for protocol in PROTOCOLS:
        scores = {n: v.per_frame("D") for n, v in score_split(ChangeDetector(), store, names, protocol).items()}
        m = evaluate_scores(scores, gt, labels, far_rates=())
        out[protocol] = {"frame_auc": m["frame_auc"], "frame_ap": m["frame_ap"], "video_auc": m["video_auc"]}
    return out
