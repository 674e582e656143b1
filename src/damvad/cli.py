"""The ``damvad`` command: one entry point, one sub-command per stage of the pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from damvad import __version__


def _cmd_extract(args: argparse.Namespace) -> int:
    from damvad.extract import extract

    report = extract(
        args.inputs,
        args.out,
        crops=args.crops,
        precision=args.precision,
        dtype=args.dtype,
        compile=not args.no_compile,
        checkpoint=args.checkpoint,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(report.summary())
    return 0 if report.ok else 1


def _cmd_weights(args: argparse.Namespace) -> int:
    from damvad.weights import weights_report

    report = weights_report()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>16}: {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="damvad",
        description="Weakly-supervised video anomaly detection with the Dissimilarity Attention Module.",
    )
    parser.add_argument("--version", action="version", version=f"damvad {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("extract", help="I3D snippet features for videos (resumable)")
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or .txt lists")
    p.add_argument("--out", required=True, help="features folder (NAME.npy + NAME.json + manifest.csv)")
    p.add_argument("--crops", default="center", choices=["center", "5", "10"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="storage dtype")
    p.add_argument("--checkpoint", default=None, help="other I3D weights (.pt state dict)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (slower, no warm-up)")
    p.add_argument("--overwrite", action="store_true", help="redo videos that are already extracted")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("weights", help="fetch, verify and describe the I3D weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_weights)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished videos/checkpoints are kept, rerun to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"damvad {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
