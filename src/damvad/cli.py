"""The ``damvad`` command: one entry point, one sub-command per stage of the pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from damvad import __version__
from damvad.config import config_path, shipped_config


def _cmd_extract(args: argparse.Namespace) -> int:
    from damvad.config import load_config
    from damvad.extraction import extract
    from damvad.stages import ExtractConfig

    inputs, overrides = _split_overrides(args.inputs)
    cfg = load_config(ExtractConfig, config_path(args.config), overrides, inputs=inputs or None, features=args.out,
                      crops=args.crops, precision=args.precision, dtype=args.dtype, checkpoint=args.checkpoint,
                      compile=_flag(not args.no_compile, True), overwrite=_flag(args.overwrite, False),
                      backend=args.backend, calibration=args.calibration, engine=args.engine, address=args.address,
                      connect_timeout=args.connect_timeout, cpus_per_worker=args.cpus_per_worker, device=args.device,
                      batch_size=args.batch_size, decoders=args.decoders, stride=args.stride, fps=args.fps)
    report = extract(cfg, progress=not args.quiet)
    print(report.summary())
    return 0 if report.ok else 1


def _split_overrides(items: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(positional arguments, ``key=value`` overrides): every subcommand takes both in one list. A URL
    or path with ``=`` in it stays an argument (its part before ``=`` is not a key)."""
    import re

    key = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")
    items = list(items or [])
    return [i for i in items if not key.match(i)], [i for i in items if key.match(i)]


def _flag(value: bool, default: bool) -> bool | None:
    """A store_true/false flag as a config layer: None (not given) unless it differs from the default."""
    return None if value == default else value


def _cmd_weights(args: argparse.Namespace) -> int:
    from damvad.weights import weights_report

    report = weights_report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>16}: {value}")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from damvad.datasets import dataset_summary, get_dataset, missing_videos
    from damvad.store import FeatureStore

    dataset = get_dataset(args.name)
    store = FeatureStore(args.features) if args.features else None
    print(dataset_summary(dataset, store))
    missing = missing_videos(dataset, store)
    if missing:
        shown = ", ".join(str(item.path) for item in missing[:10]) + (", ..." if len(missing) > 10 else "")
        print(f"ERROR {args.name}: {len(missing)} of {len(dataset)} listed video file(s) do not exist: {shown} "
              "(a relative path is read from the list's folder); fix the paths, or extract their features "
              "elsewhere and pass --features", file=sys.stderr)
    return 1 if missing else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from damvad.config import load_config
    from damvad.train import TrainConfig, train

    cfg = load_config(TrainConfig, config_path(args.config), args.overrides, dataset=args.dataset,
                      features=args.features, out=args.out, variant=args.variant, seeds=args.seeds,
                      iterations=args.iterations, device=args.device)
    summary = train(cfg, resume=args.resume, progress=not args.quiet)
    print(f"\n{'seed':>5} {'variant':<13} {'params':>10} {'selected':>9} {'val video AUC':>14}")
    for r in summary["runs"]:
        val = r.get("val_video_auc")
        print(f"{r['seed']:>5} {r['variant']:<13} {r['parameters']:>10,} {r['iteration']:>9} "
              f"{'-' if val is None else f'{100 * val:.2f}%':>14}")
    if "val_video_auc_mean" in summary:
        print(f"held-out video AUC over {len(summary['runs'])} seed(s): "
              f"{100 * summary['val_video_auc_mean']:.2f} +- {100 * summary['val_video_auc_std']:.2f}%")
    print(f"run saved in {cfg.out} (model.pt per seed; evaluate with `damvad evaluate {cfg.out} ...`)")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from damvad.config import load_config
    from damvad.evaluate import EvalConfig, evaluate, format_table

    runs, overrides = _split_overrides(args.runs)
    cfg = load_config(EvalConfig, config_path(args.config), overrides + args.set_overrides, dataset=args.dataset,
                      features=args.features, runs=runs or None, out=args.out, protocols=args.protocol,
                      score=args.score, allow_missing=_flag(args.allow_missing, False),
                      device=args.device)
    report = evaluate(cfg, progress=not args.quiet, device=cfg.device)
    print(format_table(report))
    print(f"metrics: {report['metrics_json']}")
    if report.get("roc_plot"):
        print(f"ROC curves: {report['roc_plot']}; timelines: {len(report['timelines'])} in "
              f"{report['metrics_json'].rsplit('/', 1)[0]}/timelines")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from damvad.calibrate import calibrate
    from damvad.config import load_config
    from damvad.modelfile import resolve_model_file
    from damvad.stages import CalibrateConfig

    positional, overrides = _split_overrides(args.items)
    if len(positional) > 1:
        raise ValueError(f"one model file expected, got {positional}")
    cfg = load_config(CalibrateConfig, config_path(args.config), overrides,
                      model_file=positional[0] if positional else None, features=args.features,
                      dataset=args.dataset, split=args.split, far=args.far, snippets_per_clip=args.snippets_per_clip,
                      held_out_only=_flag(not args.all_normal, True), device=args.device)
    th = calibrate(cfg)
    print(f"threshold {th.value:.4f} for a false-alarm rate of {100 * cfg.far:.2f}% of normal frames "
          f"({th.num_frames} frames of {th.num_videos} videos from {th.calibrated_on}); stored in "
          f"{resolve_model_file(cfg.model_file)}")
    return 0


def _cmd_detect(args: argparse.Namespace) -> int:
    from damvad.config import load_config
    from damvad.detect import detect
    from damvad.stages import DetectConfig

    positional, overrides = _split_overrides(args.sources)
    cfg = load_config(DetectConfig, config_path(args.config), overrides, sources=positional or None,
                      model_file=args.model, threshold=args.threshold, close_after=args.close_after,
                      output=args.output, format=args.format, append=_flag(args.append, False),
                      report=args.report, backend=args.backend,
                      precision=args.precision, calibration=args.calibration, crops=args.crops,
                      snippets_per_clip=args.snippets_per_clip, compile=_flag(not args.no_compile, True),
                      device=args.device, stride=args.stride, fps=args.fps)
    failed = detect(cfg, progress=not args.quiet)
    return 1 if failed else 0


def _mqtt_flag(value: str | None) -> dict | None:
    """``--mqtt HOST[:PORT]`` as the config's ``mqtt`` mapping."""
    if not value:
        return None
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return {"host": host, "port": int(port)} if port else {"host": value}


def _cmd_serve(args: argparse.Namespace) -> int:
    from damvad.config import load_config

    try:
        from damvad.serve.config import ServeConfig
        from damvad.serve.server import Server
    except ImportError as exc:
        raise RuntimeError(f"damvad serve needs its extra: pip install 'damvad[serve]' ({exc})") from None
    positional, overrides = _split_overrides(args.sources)
    cfg = load_config(ServeConfig, config_path(args.config), overrides, sources=positional or None,
                      model_file=args.model, threshold=args.threshold, close_after=args.close_after,
                      backend=args.backend, precision=args.precision, calibration=args.calibration, crops=args.crops,
                      snippets_per_clip=args.snippets_per_clip, compile=_flag(not args.no_compile, True),
                      device=args.device, host=args.host, port=args.port, data=args.data, token=args.token,
                      token_file=args.token_file, webhooks=args.webhook, mqtt=_mqtt_flag(args.mqtt))
    if not cfg.camera_specs():
        raise ValueError("serve needs cameras: SOURCE arguments, or `cameras` in the config")
    server = Server(cfg)
    det = server.monitor.detector
    print(f"damvad serve: {len(server.monitor.cameras)} camera(s), threshold {det.threshold:.4f} "
          f"({det.threshold_source}) on {det.device}; events in {cfg.data}; page: {server.url}/", file=sys.stderr)
    try:
        server.run()  # until Ctrl-C or SIGTERM; open events close and are announced on the way out
    except KeyboardInterrupt:
        pass
    print(f"damvad serve: stopped; events kept in {cfg.data}", file=sys.stderr)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    """Print what each stage would run with: defaults < --config < key=value."""
    from damvad.config import show_config

    action, *overrides = args.items
    if action != "show":
        raise ValueError(f"unknown config action {action!r} (show)")
    stages = [s.strip() for s in args.stage.split(",")] if args.stage else None
    print(show_config(config_path(args.config), overrides, stages), end="")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    """prepare / summary / table1 / diagnose on a named synthetic benchmark; ped2 on UCSD Ped2's frames."""
    from damvad.benchmark.prepare import prepare
    from damvad.config import load_config

    if args.action == "ped2":
        from damvad.benchmark.ped2 import command

        return command(args)
    args.name = args.name or "synth-ucf-v1"
    if args.action in ("prepare", "summary"):
        from damvad.benchmark.table1 import Table1Config

        # the features a table of this benchmark uses: its shipped config's crops, precision and backend
        shipped = f"table1-{args.name}"
        config = config_path(args.config or shipped) if args.config or shipped_config(shipped) else None
        cfg = load_config(Table1Config, config, args.overrides, benchmark=args.name, root=args.root)
        if args.action == "summary":
            from damvad.benchmark.prepare import benchmark_root
            from damvad.synth.benchmark import describe

            print(describe(benchmark_root(args.name, args.root, cfg.test_seed) / "data"))
            return 0
        splits = [s.strip() for s in args.splits.split(",")] if args.splits else None
        p = prepare(args.name, args.root, cfg.crops, cfg.precision, progress=not args.quiet, backend=cfg.backend,
                    splits=splits, test_seed=cfg.test_seed)
        print(f"{args.name}: videos in {p.data} (splits {', '.join(p.splits)})\nfeatures in {p.features} (key {p.key})")
        return 0

    if args.action == "table1":
        from damvad.benchmark.table1 import Table1Config, run_table1

        config = config_path(args.config or f"table1-{args.name}")
        cfg = load_config(Table1Config, config, args.overrides, benchmark=args.name, root=args.root)
        results = run_table1(cfg, progress=not args.quiet)
        print(open(results["paths"]["table"]).read())
        print(f"results: {results['paths']['results']}")
        return 0
    from damvad.benchmark.diagnose import load_diagnose_config, run_diagnosis

    cfg = load_diagnose_config(args.name, args.config, args.overrides, args.root)
    print(f"diagnose {cfg.benchmark}: features {cfg.backend} {cfg.precision} ({cfg.crops}), training {cfg.train}")
    report = run_diagnosis(cfg, progress=not args.quiet)
    print(report["summary_text"])
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from damvad.demo import run_demo

    run_demo(args.out, quick=args.quick, progress=not args.quiet, device=args.device, draw_seed=args.draw_seed,
             plan=args.plan)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from damvad.backends.export import export_all
    from damvad.extraction.calibration import VIDEO_CALIBRATION
    from damvad.modelfile import resolve_model_file

    model = resolve_model_file(args.model) if args.model else None  # before any I3D work: a run folder's seed
    written = export_all(args.out, model_path=model, formats=args.format, int8=args.int8, checkpoint=args.checkpoint,
                         calibration=args.calibration, calibration_data=VIDEO_CALIBRATION)
    for path in written:
        print(path)
    return 0



# ------------------------------------------------------------------------------------------ parser
# Choices and defaults come from damvad.choices (the config checks read the same names); a flag left out is
# None, so the config file and key=value overrides decide (damvad.config).


def _backend_options(p: argparse.ArgumentParser) -> None:
    from damvad.choices import BACKENDS, DEFAULT_BACKEND, PRECISIONS

    p.add_argument("--backend", default=None, choices=BACKENDS,
                   help=f"I3D implementation (default {DEFAULT_BACKEND}: the fastest measured, see README)")
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="default: the fastest this CPU runs well (openvino: int8 with VNNI, else bf16, else fp32; "
                        "torch: bf16 or fp32); int8 needs openvino; on a GPU: torch fp16 (or bf16, fp32)")
    p.add_argument("--calibration", nargs="+", default=None, metavar="VIDEO",
                   help="int8 only: calibrate on these videos/folders (default: built-in synthetic scenes + "
                        "vtest.avi when found); the quantized model is cached per calibration set")


def _crops_option(p: argparse.ArgumentParser, default: str) -> None:
    from damvad.choices import CROPS

    p.add_argument("--crops", default=None, choices=CROPS, help=f"crops averaged per snippet (default: {default})")


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML file or shipped config name (ucf-crime, ...): top-level "
                   "keys shared by the stages that have them, a section per stage (see `damvad config show`)")


def _snippet_options(p: argparse.ArgumentParser, stride_default: str) -> None:
    from damvad.snippets import SNIPPET_LEN

    p.add_argument("--stride", type=int, metavar="N", help=f"{SNIPPET_LEN}-frame snippets every N frames, "
                   f"1-{SNIPPET_LEN} (default: {stride_default}); below {SNIPPET_LEN} they overlap")
    p.add_argument("--fps", type=float, help="frame rate of folders of frames (image files have none: assumed, warned)")


def _device_option(p: argparse.ArgumentParser) -> None:
    from damvad.choices import DEVICES

    p.add_argument("--device", default=None, metavar=DEVICES.replace(" ", ""),
                   help="where torch work runs (default auto: the first CUDA device when torch sees one, else cpu)")


def _live_options(p: argparse.ArgumentParser) -> None:
    """What detect and serve share: the live detector's settings (damvad.stages.LiveConfig)."""
    from damvad.choices import CLOSE_AFTER

    p.add_argument("--model", default=None, help="model.pt or its run folder (config: model_file)")
    p.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    p.add_argument("--close-after", type=float, default=None,
                   help=f"seconds below threshold that close an alert (default {CLOSE_AFTER:g})")
    _backend_options(p)  # default: the backend and precision of the model's training features
    _crops_option(p, "the crops of the model's training features")
    p.add_argument("--snippets-per-clip", type=int, default=None,
                   help="default: the clip length the threshold was calibrated for, else 1")
    p.add_argument("--no-compile", action="store_true")
    _device_option(p)


def _extract_parser(sub: argparse._SubParsersAction) -> None:
    from damvad.choices import CONNECT_TIMEOUT_S, DTYPES, ENGINES

    p = sub.add_parser("extract", help="I3D snippet features for videos (resumable)")
    p.add_argument("inputs", nargs="*", metavar="INPUT|KEY=VALUE",
                   help="videos, folders (searched recursively; one of images is a video) or .txt lists; key=value")
    _config_option(p)
    p.add_argument("--out", default=None, help="features folder (NAME.npy + NAME.json + manifest.csv)")
    _crops_option(p, "center")
    _backend_options(p)
    p.add_argument("--dtype", default=None, choices=DTYPES, help=f"storage dtype (default {DTYPES[0]})")
    p.add_argument("--checkpoint", default=None, help="other I3D weights (.pt state dict)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (slower, no warm-up)")
    p.add_argument("--overwrite", action="store_true", help="redo videos that are already extracted")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--engine", default=None, choices=ENGINES,
                   help="local: this machine; ray: every node of a Ray cluster (pip install 'damvad[cluster]')")
    p.add_argument("--address", default=None, help="Ray cluster: auto (the one this machine is part of) or "
                   "HOST:PORT; default $RAY_ADDRESS, else a new Ray instance on this machine")
    p.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                   help="Ray: seconds for the cluster at --address to complete Ray's handshake "
                   f"(default {CONNECT_TIMEOUT_S:g})")
    _device_option(p)
    p.add_argument("--batch-size", type=int, default=None,
                   help="clips per I3D call (default: 1 on the CPU, from the free memory on a GPU); above 1 or on "
                        "a GPU, several videos are decoded at once and their snippets packed into full batches")
    p.add_argument("--decoders", type=int, default=None,
                   help="decoding threads of the batched path (default: half the CPUs, at most 8)")
    _snippet_options(p, "the paper's non-overlapping snippets")
    p.add_argument("--cpus-per-worker", type=int, default=None,
                   help="Ray: CPUs per worker process (default: one worker per CPU node with all its CPUs, "
                   "one per GPU); on GPU nodes, several workers share a GPU when its CPUs allow")
    p.set_defaults(func=_cmd_extract, positionals="inputs")


def _data_parsers(sub: argparse._SubParsersAction) -> None:
    """weights, dataset."""
    p = sub.add_parser("weights", help="fetch, verify and describe the I3D weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("dataset", help="describe a benchmark or a folder/CSV dataset")
    p.add_argument("name", help="ucf-crime, shanghaitech, xd-violence, a folder or a CSV")
    p.add_argument("--features", default=None, help="use this features folder's true frame counts")
    p.set_defaults(func=_cmd_dataset)


def _train_parsers(sub: argparse._SubParsersAction) -> None:
    """train, evaluate."""
    from damvad.choices import PROTOCOLS, SCORES, VARIANTS

    p = sub.add_parser("train", help="train DAM (or an ablation) from video-level labels")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. lr=3e-4 seeds=[0,1,2]")
    _config_option(p)
    p.add_argument("--dataset", default=None)
    p.add_argument("--features", default=None)
    p.add_argument("--out", default=None, help="run folder")
    p.add_argument("--variant", default=None, choices=VARIANTS)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    _device_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_train, positionals="overrides")

    p = sub.add_parser("evaluate", help="frame-level AUC / AP / false alarms of trained runs on a test split")
    p.add_argument("runs", nargs="*", metavar="RUN|KEY=VALUE",
                   help="run folders or model files; key=value config overrides, e.g. far_rates=[0.01]")
    p.add_argument("--set", dest="set_overrides", nargs="+", metavar="KEY=VALUE", default=[],
                   help="config overrides (an older spelling of positional key=value)")
    _config_option(p)
    p.add_argument("--dataset", default=None)
    p.add_argument("--features", default=None)
    p.add_argument("--out", default=None, help="report folder (default: RUN/eval)")
    p.add_argument("--protocol", nargs="+", default=None, choices=PROTOCOLS)
    p.add_argument("--score", default=None, choices=SCORES)
    p.add_argument("--allow-missing", action="store_true",
                   help="evaluate the videos that have features (a partial benchmark); the missing are listed")
    _device_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate, positionals="runs")


def _live_parsers(sub: argparse._SubParsersAction) -> None:
    """calibrate, detect, serve."""
    from damvad.choices import FAR, ROW_FORMATS

    p = sub.add_parser("calibrate", help="set a model's alert threshold for a false-alarm rate")
    p.add_argument("items", nargs="*", metavar="MODEL|KEY=VALUE",
                   help="model.pt (or its run folder); key=value config overrides")
    _config_option(p)
    p.add_argument("--features", default=None, help="default: the features the model was trained on")
    p.add_argument("--dataset", default=None, help="whose normal videos of --split are used (default: the model's)")
    p.add_argument("--split", default=None, help="default train")
    p.add_argument("--far", type=float, default=None,
                   help=f"fraction of normal frames allowed to alert (default {FAR:g})")
    p.add_argument("--snippets-per-clip", type=int, default=None,
                   help="online clip length (default: the model's, else 1)")
    p.add_argument("--all-normal", action="store_true", help="use every normal video, not only held-out ones")
    _device_option(p)
    p.set_defaults(func=_cmd_calibrate, positionals="items")

    p = sub.add_parser("detect", help="score a file, folder, RTSP/HTTP stream or webcam, live, with alerts")
    p.add_argument("sources", nargs="*", metavar="SOURCE|KEY=VALUE",
                   help="video, folder (its videos; one of images is a video), URL, or webcam index; key=value")
    _config_option(p)
    _live_options(p)
    p.add_argument("--output", "-o", default=None, help="CSV or JSONL file for per-clip rows (default stdout)")
    p.add_argument("--format", choices=ROW_FORMATS, default=None)
    p.add_argument("--append", action="store_true",
                   help="append rows to --output as they come (a log that can be followed, kept across runs; "
                        "a CSV header only in a new or empty file) instead of replacing it when the run ends")
    p.add_argument("--report", default=None, help="folder for a timeline plot, events and an annotated video")
    _snippet_options(p, "the model's training features'")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_detect, positionals="sources")

    p = sub.add_parser("serve", help="monitor cameras: a web page, events in SQLite, alerts to webhooks and MQTT")
    p.add_argument("sources", nargs="*", metavar="SOURCE|KEY=VALUE",
                   help="video file, folder, URL, webcam index or synth:SEED (one camera each); "
                        "key=value config overrides")
    _config_option(p)
    _live_options(p)
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1; any other needs --token)")
    p.add_argument("--port", type=int, default=None, help="default 8080 (0: any free port)")
    p.add_argument("--data", default=None, help="folder for events.db and event pictures (default damvad-data)")
    p.add_argument("--token", default=None, help="required on every request (also token_file, $DAMVAD_TOKEN)")
    p.add_argument("--token-file", default=None, help="read the token from this file")
    p.add_argument("--webhook", nargs="+", default=None, metavar="URL", help="POST every event as JSON here")
    p.add_argument("--mqtt", default=None, metavar="HOST[:PORT]", help="publish events to this MQTT broker")
    p.set_defaults(func=_cmd_serve, positionals="sources")


def _tool_parsers(sub: argparse._SubParsersAction) -> None:
    """config, benchmark, export, demo."""
    from damvad.config import STAGES

    p = sub.add_parser("config", help="show the merged config every stage would run with")
    p.add_argument("items", nargs="+", metavar="show [KEY=VALUE ...]", help="show, then key=value (every stage "
                   "that has the key) or stage.key=value overrides")
    _config_option(p)
    p.add_argument("--stage", default=None, help=f"only these stages, comma-separated ({', '.join(STAGES)})")
    p.set_defaults(func=_cmd_config, positionals="items")

    p = sub.add_parser("benchmark", help="named synthetic benchmarks: prepare, summary, table1, diagnose; UCSD Ped2")
    p.add_argument("action", choices=["prepare", "summary", "table1", "diagnose", "ped2"],
                   help="prepare: videos + cached features; summary: per split; table1: every variant over "
                        "seeds; diagnose: inside DAM's training on the dev split; ped2: UCSD Ped2 (no NAME)")
    p.add_argument("name", nargs="?", default=None, help="benchmark name (default synth-ucf-v1)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. split=dev seeds=[0,1]")
    p.add_argument("--config", default=None, help="YAML file or shipped config (default: table1-NAME, benchmark-ped2)")
    p.add_argument("--root", default=None, help="benchmark folder (<damvad cache>/benchmarks/NAME); ped2: its frames")
    p.add_argument("--splits", default=None, help="prepare: only these splits, comma-separated (e.g. train,dev "
                   "while deciding; a killed or partial preparation continues where it stopped)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_benchmark, positionals="overrides")

    p = sub.add_parser("export", help="I3D (and a trained DAM head) to ONNX and OpenVINO IR, with input specs")
    p.add_argument("--out", required=True, help="folder for the model files and INPUT_SPECS.md / specs.json")
    p.add_argument("--model", default=None, help="a trained model.pt (or run folder): also export its DAM head")
    p.add_argument("--format", nargs="+", default=["onnx", "openvino"], choices=["onnx", "openvino"])
    p.add_argument("--int8", action="store_true", help="also the int8 OpenVINO I3D (quantized, cached)")
    p.add_argument("--calibration", nargs="+", default=None, metavar="VIDEO", help="int8 calibration videos")
    p.add_argument("--checkpoint", default=None, help="other I3D weights (.pt state dict)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("demo", help="the whole pipeline on a generated dataset (no download)")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--quick", action="store_true", help="a smaller dataset and budget (for tests)")
    p.add_argument("--plan", choices=("auto", "full", "small"), default="auto",
                   help="auto (default): full on a GPU or a CPU with AVX-512 VNNI or AMX, small (~37 %% of the "
                        "frames, shorter videos; benchmarks/demo-dev-study.md) elsewhere")
    p.add_argument("--draw-seed", type=int, default=None,
                   help="another draw of the same recipe (generator seed; default: the shipped draw)")
    _device_option(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="damvad",
        description="Weakly-supervised video anomaly detection with the Dissimilarity Attention Module.",
    )
    parser.add_argument("--version", action="version", version=f"damvad {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_extract_parser, _data_parsers, _train_parsers, _live_parsers, _tool_parsers):
        add(sub)
    return parser


def _user_error(exc: BaseException) -> str | None:
    """The message for an error caused by the input or the machine (a bad file or value, a refused
    pickle, a full disk...), or None for a bug, which keeps its traceback. The one place that decides."""
    import errno
    import pickle

    if isinstance(exc, OSError):
        text = str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            text += " (the disk is full: free some space and rerun; finished work is kept)"
        return text
    if isinstance(exc, (ValueError, RuntimeError, pickle.UnpicklingError)):
        return str(exc)
    return None


INTERRUPTED = {  # what an interrupted command leaves, and how to go on
    "extract": "finished videos are kept; the same command resumes the rest",
    "train": "the last checkpoint is kept; the same command with --resume continues it",
    "detect": "the rows scored so far are written and an open alert closed (the last source's line says where it "
              "stopped)",
    "benchmark": "finished runs are kept; the same command resumes the rest",
    "demo": "finished steps are kept; the same command resumes",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    rest = getattr(args, "positionals", None)  # positionals after an option land here (argparse stops at it)
    if extra and (rest is None or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        setattr(args, rest, list(getattr(args, rest) or []) + extra)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from damvad.utils import Terminated, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # docker stop / systemctl stop: the same clean-up as Ctrl-C
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        kept = INTERRUPTED.get(args.command)
        terminated = isinstance(exc, Terminated) or isinstance(exc.__cause__, Terminated)
        print(f"damvad {args.command}: {'terminated' if terminated else 'interrupted'}{'; ' + kept if kept else ''}",
              file=sys.stderr)
        return 143 if terminated else 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            return 141  # the reader of our output went away (`damvad detect cam | head`): stop quietly, as Unix does
        message = _user_error(exc)
        if message is None or args.verbose:
            raise
        print(f"damvad {args.command}: error: {message}", file=sys.stderr)
        return 2


def _stdout_closed() -> bool:
    """Whether stdout's reader has gone (a pipe or socket whose other end closed: poll() reports an error or a
    hang-up on it); if so stdout is pointed at /dev/null, so that Python's own flush at exit stays quiet."""
    import os
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
        if gone:
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        return gone
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests, embedding): cannot tell
        return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
