"""Live detection: frames -> 64-frame snippets -> I3D -> one DAM step with carried state -> alerts.

No look-ahead: a snippet is scored as soon as its last frame arrives, from itself and the previous
clip only (:class:`damvad.scoring.StreamScorer`, the same code as the online evaluation protocol, so
live scores equal ``damvad evaluate``'s online scores for the same video). Decoding runs in a
background thread; memory stays constant however long the stream runs (one snippet buffer, one clip
of state, one open alert event).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import numpy as np

from damvad.backends import I3DBackend, as_backend, run_batch
from damvad.choices import UNCALIBRATED_THRESHOLD
from damvad.contract import FeatureContract, contract_backend
from damvad.detections import (
    AlertEvent,
    AlertTracker,
    DetectionInterrupted,
    DetectionResult,
    DetectionRow,
    RowWriter,
    print_summary,
)
from damvad.frametimes import FrameClock, LivePace, known_rate, timed_frames
from damvad.progress import StatusLine
from damvad.scoring import ClipResult, StreamScorer
from damvad.snippets import check_stride
from damvad.stages import DetectConfig, LiveConfig
from damvad.video import (
    CROP_NAMES,
    SNIPPET_LEN,
    VIDEO_EXTENSIONS,
    Snippet,
    VideoError,
    VideoInfo,
    expand_sources,
    is_live_source,
    iter_frames,
    normalize_crops,
    preprocessed_snippets,
    probe,
    resize_frames,
)

log = logging.getLogger(__name__)

FeatureFn = Callable[[Any], Any]


@dataclass(frozen=True)
class ReconnectPolicy:
    """How long a URL source that fails is retried. Bounded across the whole source, not per frame: a
    source that fails again and again (a server that cuts every download half-way) is given up, while a
    camera that drops now and then lives on, since failures older than ``window`` are forgotten."""

    attempts: int = 5  # reconnects allowed within ``window`` seconds
    window: float = 600.0
    max_outage: float = 120.0  # seconds without a new frame after which the source is given up
    wait: float = 2.0  # pause before each reconnect


RECONNECT = ReconnectPolicy()
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "srt", "tcp", "mms")


def is_recording(source: str, info: VideoInfo | None = None) -> bool:
    """A URL that serves a finite recording (the container declares its frames, or the path names a video
    file), not a live feed: reopening it starts again at frame 0."""
    if not is_live_source(source) or source.isdigit():
        return False
    if source.split("://", 1)[0].lower() in LIVE_SCHEMES:
        return False
    return bool(info and info.declared_frames) or urlparse(source).path.lower().endswith(VIDEO_EXTENSIONS)


def reconnecting_frames(source: str, policy: ReconnectPolicy | None = None, resume: bool | None = None,
                        clock: FrameClock | None = None, planar: bool = False,
                        crops: str | None = None) -> Iterator[np.ndarray]:
    """Frames of a URL, reopened after an error or a stall as ``policy`` allows.

    ``resume`` (default: :func:`is_recording`): the source restarts at frame 0 when reopened, so the
    frames already delivered are decoded again and dropped; frame numbers stay those of the recording, and
    a reconnect that brings no new frame counts as a failure. A live feed continues where it is.
    ``clock`` gets each frame's timestamp (:mod:`damvad.frametimes`); ``planar`` and ``crops`` as
    :func:`damvad.video.iter_frames`.
    """
    policy = policy or RECONNECT
    resume = is_recording(source) if resume is None else resume
    delivered = 0
    failures: list[float] = []  # when each recent failure happened
    last_new = time.monotonic()
    while True:
        seen = 0
        try:
            for frame in iter_frames(source, clock=clock, planar=planar, crops=crops):
                seen += 1
                if resume and seen <= delivered:
                    continue  # already delivered before the reconnect
                delivered += 1
                last_new = time.monotonic()
                yield frame
            return  # the stream ended normally
        except VideoError as exc:
            now = time.monotonic()
            failures = [t for t in failures if now - t < policy.window] + [now]
            outage = now - last_new
            if len(failures) > policy.attempts or outage > policy.max_outage:
                why = (f"{len(failures) - 1} reconnect(s) in {min(policy.window, now - failures[0]):.0f} s"
                       if len(failures) > policy.attempts else f"no new frame for {outage:.0f} s")
                raise VideoError(source, f"stream lost: given up after {why}, {delivered} frames delivered "
                                         f"({exc.cause})") from exc
            log.warning("%s: %s; reconnecting (%d/%d) in %.0f s%s", source, exc.cause, len(failures), policy.attempts,
                        policy.wait, f", resuming at frame {delivered}" if resume else "")
            time.sleep(policy.wait)


class Detector:
    """A trained DAM head plus the I3D fast path, scoring sources one snippet at a time.

    Built from a :class:`~damvad.stages.LiveConfig` (:meth:`from_config`), or from a model file and the same
    settings as keywords. ``None`` settings come from the model file's feature contract
    (:mod:`damvad.contract`): the crops, stride, backend and precision of its training features, the clip
    length its threshold was calibrated for. Features that would differ (other I3D weights, crops, stride)
    are refused; another precision or backend is allowed and listed in :attr:`warnings`. ``device`` (``None``
    / ``auto``: a CUDA device when torch sees one) runs I3D and the DAM head. ``i3d``: an I3D backend to run
    instead of the one the settings describe (a plain function is a stand-in, see
    :func:`damvad.backends.as_backend`)."""

    def __init__(self, model: str | Path | LiveConfig, *, i3d: I3DBackend | FeatureFn | None = None,
                 **settings: Any) -> None:
        if isinstance(model, LiveConfig):
            if settings:
                raise TypeError(f"settings come from the config, not keywords: {sorted(settings)}")
            cfg = model
        else:
            if settings.get("device") is not None:
                settings["device"] = str(settings["device"])  # a torch.device too
            cfg = LiveConfig(model_file=str(model), **settings)
        self._setup(cfg, None if i3d is None else as_backend(i3d))

    @classmethod
    def from_config(cls, cfg: LiveConfig, *, i3d: I3DBackend | FeatureFn | None = None) -> Detector:
        """The detector ``cfg`` describes (``i3d``: a stand-in I3D, or one already built)."""
        return cls(cfg, i3d=i3d)

    def _setup(self, cfg: LiveConfig, backend: I3DBackend | None) -> None:
        from damvad.device import resolve_device
        from damvad.modelfile import load_model

        if not cfg.model_file:
            raise ValueError("a model file is needed (--model, or `model_file` in the config)")
        self.device = backend.device if backend is not None else resolve_device(cfg.device)
        self.model, self.card = load_model(cfg.model_file, self.device)
        expected = self.card.features
        self.crops = normalize_crops(cfg.crops if cfg.crops is not None else (expected.crops if expected else "center"))
        self.stride = check_stride(cfg.stride if cfg.stride is not None else (expected.stride if expected else None),
                                   SNIPPET_LEN)
        self.snippets_per_clip = cfg.snippets_per_clip or self.card.snippets_per_clip
        self.close_after = cfg.close_after
        self.warnings: list[str] = []
        self._threshold(cfg.threshold)
        if backend is None:
            from damvad.extraction.backend import open_backend  # looked up now: the one place a test swaps I3D

            name, precision = cfg.backend, cfg.precision
            if self.device.type == "cpu":  # a GPU runs its own default (torch fp16); the difference is reported
                name, precision = contract_backend(expected, name, precision)
            # one compiled shape (batch 1) for every crop mode
            backend = open_backend(backend=name, precision=precision, device=self.device, compile=cfg.compile,
                                   calibration=cfg.calibration, batch_size=1)
        self.backend = backend
        self.input_dtype = "uint8" if backend.accepts_uint8 else "float32"
        self.contract = FeatureContract(weights_sha256=backend.weights_sha256, crops=self.crops,
                                        snippet_len=SNIPPET_LEN, stride=self.stride, precision=backend.precision,
                                        backend=backend.name)
        self._check_contract(cfg.threshold is None)

    def _threshold(self, given: float | None) -> None:
        """The alert threshold: ``given``, else the calibrated one, else the uncalibrated default."""
        calibrated = self.card.threshold
        if given is not None:
            self.threshold, self.threshold_source = float(given), "command line"
        elif calibrated is not None:
            self.threshold, self.threshold_source = float(calibrated.value), "calibrated"
        else:
            self.threshold = UNCALIBRATED_THRESHOLD
            self.threshold_source = f"default {UNCALIBRATED_THRESHOLD:g} (not calibrated)"
        if calibrated is not None and given is None and self.snippets_per_clip != calibrated.snippets_per_clip:
            self.warnings.append(f"the threshold was calibrated for snippets_per_clip={calibrated.snippets_per_clip}, "
                                 f"not {self.snippets_per_clip}: its false-alarm rate does not carry over")
            log.warning("%s", self.warnings[-1])

    def _check_contract(self, calibrated_threshold: bool) -> None:
        """Refuse features unlike the model's training ones (and the threshold's); list the rounding warnings."""
        from damvad.contract import check_contract

        if self.card.features is not None:
            self.warnings += check_contract(self.card.features, self.contract, "the model's training features",
                                            "detect")
        on_threshold = self.card.threshold.features if self.card.threshold is not None else None
        if on_threshold is not None and calibrated_threshold:
            found = check_contract(on_threshold.contract, self.contract,
                                   "the features the threshold was calibrated on", "detect")
            self.warnings += [w for w in found if w not in self.warnings]

    def run(
        self,
        source: str | Path | Iterable[np.ndarray],
        fps: float | None = None,
        writer: RowWriter | None = None,
        progress: bool = True,
        name: str | None = None,
        keep_rows: bool = True,
        live: bool | None = None,
    ) -> DetectionResult:
        """Score one source (file, folder of frames, URL, webcam index, or an iterator of RGB frames). Times
        come from the frames' timestamps (:mod:`damvad.frametimes`); ``fps`` (default: the declared rate, else
        25) is the fallback for frames without them (an iterator of frames, a folder of frames: always).
        ``live``: frames that arrive in real time, whose pace is watched (None: a camera URL or webcam index,
        not a recording served over HTTP). Ctrl-C (or the CLI's SIGTERM) while scoring raises
        :class:`DetectionInterrupted`, a KeyboardInterrupt that carries the result so far (open alert closed)."""
        try:
            label, frames, planar, info, clock = self._open(source, fps, name)
        except VideoError as exc:  # reported as this source's error; the caller goes on with the others
            log.error("%s", exc)
            return DetectionResult(name or str(source), known_rate(fps), error=str(exc))
        if live is None:
            src = str(source)
            live = isinstance(source, (str, Path)) and is_live_source(src) and not is_recording(src, info)
        run = _SourceRun(self, label, clock, writer, keep_rows, progress, live)
        stop: KeyboardInterrupt | None = None
        try:
            # extraction's own path from frames to I3D inputs, two snippets ahead in a background thread
            for snip, x in preprocessed_snippets(label, self.crops, SNIPPET_LEN, prefetch=2, dtype=self.input_dtype,
                                                 frames=timed_frames(frames, clock), planar=planar,
                                                 stride=self.stride):
                run.snippet(snip, run_batch(self.backend, x)[0])
        except VideoError as exc:
            run.result.error = str(exc)
            log.error("%s", exc)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM from the CLI: the source's result so far goes with it
            stop = exc
        else:
            run.result.warning = info.frame_count_warning(run.result.frames) if info is not None else None
            if run.result.warning:
                log.warning("%s: %s", label, run.result.warning)
        finally:
            run.finish()
        if stop is not None:
            run.result.interrupted = True
            raise DetectionInterrupted(run.result) from stop
        return run.result

    def _open(self, source: str | Path | Iterable[np.ndarray], fps: float | None,
              name: str | None) -> tuple[str, Iterable[np.ndarray], bool, VideoInfo | None, FrameClock]:
        """(label, frames, planar, info, clock) of a source; a VideoError when it cannot be opened."""
        if not isinstance(source, (str, Path)):
            label = name or "<frames>"
            return label, resize_frames(source), False, None, FrameClock(known_rate(fps), label)
        src = str(source)
        label = name or src
        info = probe(src, fps)  # a folder of frames takes its rate from fps
        clock = FrameClock(known_rate(fps, info.fps), label)
        if not is_live_source(src):  # planar frames, the fast path (damvad.video), for files and streams alike
            return label, iter_frames(src, planar=True, clock=clock, crops=self.crops), True, info, clock
        frames = reconnecting_frames(src, resume=is_recording(src, info), clock=clock, planar=True, crops=self.crops)
        return label, frames, True, info, clock


class _SourceRun:
    """One source being scored: its rows, alerts and progress line, one snippet at a time."""

    def __init__(self, det: Detector, label: str, clock: FrameClock, writer: RowWriter | None, keep_rows: bool,
                 progress: bool, live: bool = False) -> None:
        self.label, self.clock, self.writer, self.keep_rows, self.progress = label, clock, writer, keep_rows, progress
        self.result = DetectionResult(label, clock.fps, device=str(det.device))
        self.scorer = StreamScorer(det.model, crops=len(CROP_NAMES[det.crops]), snippets_per_clip=det.snippets_per_clip)
        self.alerts = AlertTracker(det.threshold, clock.fps, det.close_after)
        self.bounds: dict[int, float] = {}  # snippet boundary (frame) -> time (s), for clips still to come
        self.last_row: DetectionRow | None = None  # kept even when rows are not (constant memory)
        self.arrived = 0.0
        self.start = time.perf_counter()
        self.pace = LivePace() if live else None
        self.setup = f"crops {det.crops}, {det.backend.name or 'custom'} {det.backend.precision} on {det.device}"
        self.status = StatusLine(self.start)

    def snippet(self, snip: Snippet, maps: np.ndarray) -> None:
        """Score one snippet's maps; a row when that completes a clip."""
        times, end = self.clock.take(snip.end - self.result.frames)  # the frames it adds (snippets may overlap)
        self.bounds[self.result.frames] = times[0]  # the first new frame's own time (the previous end's estimate)
        self.bounds[snip.end] = end
        if self.keep_rows:
            self.result.frame_times.extend(times)
        self.arrived = snip.arrived  # latency: from the snippet's last frame to its score
        self.emit(self.scorer.push(maps, snip.start, snip.end))
        self.result.frames = snip.end
        now = time.perf_counter()
        if self.pace is not None and (behind := self.pace.behind(end, now)) is not None:
            self.result.behind_real_time = behind
            log.warning("%s: scored at %.2fx real time, so this live source falls %.0f s further behind every minute "
                        "(%s); keep up with --crops center, OpenVINO int8 (the CPU default), fewer cameras per "
                        "machine, or a GPU", self.label, behind, 60.0 * (1.0 / behind - 1.0), self.setup)
        r = self.last_row
        if self.progress and r is not None and self.status.due(now):
            rate = self.result.frames / (now - self.start)
            self.status.show(f"{self.label}: {self.result.frames} frames, {rate:.1f} frames/s "
                             f"({end / (now - self.start):.1f}x real time), latency {r.latency_ms:.0f} ms, "
                             f"score {r.score:.3f}{' ALERT' if r.alert else ''}", now)

    def emit(self, clip: ClipResult | None) -> None:
        if clip is None:
            return
        start, end = self.bounds[clip.start_frame], self.bounds[clip.end_frame]
        for frame in [f for f in self.bounds if f < clip.end_frame]:  # constant memory
            del self.bounds[frame]
        active, closed = self.alerts.update(clip, clip.score, (start, end))
        if closed is not None:
            self.event(closed)
        row = DetectionRow(self.label, clip.index, clip.start_frame, clip.end_frame, start, end, clip.score,
                           clip.weighted, clip.clip_attention, active, (time.perf_counter() - self.arrived) * 1000.0)
        if self.keep_rows:
            self.result.rows.append(row)
        self.last_row = row
        if self.writer:
            self.writer.write(row)

    def event(self, event: AlertEvent) -> None:
        self.result.events.append(event)
        if self.writer:
            self.writer.event(self.label, event)

    def finish(self) -> None:
        """A stream that ends mid-clip still gets its score; an open alert is closed."""
        self.emit(self.scorer.flush())
        event = self.alerts.finish()
        if event is not None:
            self.event(event)
        self.result.timing, self.result.variable_frame_rate = self.clock.timing, self.clock.variable
        self.result.seconds = time.perf_counter() - self.start
        self.status.end()


def detect(cfg: DetectConfig, *, progress: bool = True, log_to: TextIO | None = None) -> int:
    """Score every source of ``cfg`` (files, folders' videos, URLs, webcams) with one detector; rows to
    ``cfg.output`` (default stdout; a file is replaced atomically, and only once there are rows; with
    ``cfg.append``, rows are appended to it as they come), a report per source in ``cfg.report``. One source's
    error is reported and the others are still scored. A line per source goes to ``log_to`` (default stderr).
    Returns the number of sources that failed."""
    from contextlib import nullcontext

    from damvad.utils import AppendTextOutput, AtomicTextOutput

    say = log_to or sys.stderr
    if not cfg.model_file:
        raise ValueError("detect needs --model (or `model_file` in the config)")
    sources = expand_sources(cfg.sources)
    if not sources:
        raise ValueError(f"no videos found in {cfg.sources}")
    output = cfg.output
    to_file = bool(output and output != "-")
    if cfg.append and not to_file:
        raise ValueError("append needs an output file (--output FILE)")
    det = Detector.from_config(cfg)
    print(f"threshold {det.threshold:.4f} ({det.threshold_source}); {len(sources)} source(s); on {det.device}",
          file=say)
    fmt = cfg.format or ("jsonl" if output and output.endswith((".jsonl", ".json")) else "csv")
    failed = 0
    opened = (AppendTextOutput(output) if cfg.append else AtomicTextOutput(output)) if to_file else None
    with opened or nullcontext(sys.stdout) as stream:
        writer = RowWriter(stream, fmt, header=opened is None or opened.fresh)
        for src in sources:
            is_file = Path(src).exists()  # a file or a folder of frames (whose frame rate is ours to give)
            try:
                result = det.run(src, fps=cfg.fps if Path(src).is_dir() else None, writer=writer,
                                 progress=progress, keep_rows=bool(cfg.report) or is_file)
            except DetectionInterrupted as stop:  # this source's summary and report, then stop
                print_summary(stop.result, src, is_file, cfg.report, det.threshold, say)
                raise
            failed += result.error is not None
            print_summary(result, src, is_file, cfg.report, det.threshold, say)
        if to_file and not stream.written:
            print(f"nothing scored: {output} left as it was", file=say)
    if failed:
        print(f"{failed} of {len(sources)} source(s) failed", file=say)
    return failed
