"""Distributed I3D extraction on a Ray cluster: many machines, the same files as ``damvad extract``.

Design, and why:

* **Ray core actors** (not Ray Data): each worker is an actor that loads (and compiles) I3D once and then
  extracts one video at a time with the local code path (:func:`damvad.extraction.local.extract_to_store`). The
  driver hands out the videos itself, so a lost worker's video is simply queued again and a bad video is
  recorded with its error; a Ray Data pipeline would hide both inside its own retries.
* **One unit of work per video, longest first** (LPT scheduling: never more than 4/3 of the best possible
  job time; for UCF-Crime's frame counts, the best possible up to 14 workers). Splitting a long video into
  snippet ranges would need frame-exact seeking (decoding from the start up to the range, or trusting
  container timestamps) and a stitching step, and the stitched file must still equal the local one bit
  for bit. The price: the longest video bounds the job. UCF-Crime's longest (Normal_Videos308, 976,503
  frames, 7 % of the dataset) caps the speed-up near 14 workers; benchmarks/README.md gives the hours.
* **Workers write through the feature store** into ``out_dir``, which every node must see at the same path
  (a shared filesystem; each worker checks for the driver's marker file when it starts). Each file is
  written atomically, so a worker lost mid-video leaves at most a temporary file, which the driver
  removes at the end; the video is retried on another worker (``max_attempts`` in all).
* **Sized from the cluster's resources**: on a CPU node one worker holding all its CPUs (or
  ``cpus_per_worker`` each), with as many torch threads; on a node with GPUs one worker per GPU
  (``num_gpus=1``), or several sharing a GPU when ``cpus_per_worker`` splits its CPUs (a worker decodes
  in its own process, and one may not keep a fast GPU busy). Nodes that join during the job get workers.
* **Weights travel through the object store**: the driver reads the checkpoint once, the workers check
  its sha256, so no node downloads anything.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damvad import __version__
from damvad.backends import resolve
from damvad.extraction.plan import (
    ExtractorSpec,
    ExtractReport,
    collect_videos,
    open_store,
    plan_videos,
    probe_all,
    write_manifest,
)
from damvad.extraction.ray_connect import check_cluster, import_ray
from damvad.extraction.ray_worker import FeatureWorker
from damvad.framefolder import frame_rate
from damvad.stages import ExtractConfig
from damvad.store import FeatureStore
from damvad.utils import remove_stale_temps, sha256_file
from damvad.video import VideoError, VideoInfo
from damvad.weights import fetch_i3d_checkpoint

log = logging.getLogger(__name__)

MARKER_PREFIX = ".damvad-ray-"
NODE_TRIES = 3  # a node whose workers fail to start this many times in a row is left out of the job


@dataclass(frozen=True)
class WorkerShape:
    """The Ray resources one worker holds."""

    num_cpus: float
    num_gpus: float


def plan_workers(resources: dict[str, float], cpus_per_worker: int = 0) -> list[WorkerShape]:
    """The workers a node with these Ray resources gets.

    CPU node: one worker per ``cpus_per_worker`` CPUs (0: one worker with all of them). GPU node: one
    worker per GPU with its share of the CPUs; with ``cpus_per_worker``, as many workers per GPU as that
    share holds (each worker decodes in its own process: more of them keep a fast GPU fed). A node
    without CPUs or GPUs (a bare head) gets none.
    """
    cpus = float(resources.get("CPU", 0.0))
    gpus = int(resources.get("GPU", 0.0))
    if gpus >= 1:
        share = cpus / gpus
        if not cpus_per_worker or share < cpus_per_worker:
            each = float(int(share)) if share >= 1 else share
            return [WorkerShape(each, 1.0)] * gpus
        per_gpu = int(share // cpus_per_worker)
        return [WorkerShape(float(cpus_per_worker), 1.0 / per_gpu)] * (gpus * per_gpu)
    each = cpus_per_worker or int(cpus)
    if each < 1 or cpus < each:
        return []
    return [WorkerShape(float(each), 0.0)] * int(cpus // each)


@dataclass
class ClusterReport(ExtractReport):
    """An extraction report with what happened on the cluster."""

    workers: int = 0  # workers that started (a replaced worker counts again)
    nodes: int = 0  # nodes that ran at least one worker
    lost: int = 0  # workers lost (node died, process killed or crashed)
    retried: dict[str, int] = field(default_factory=dict)  # video -> times it was handed out again
    left_out: dict[str, str] = field(default_factory=dict)  # node -> why no worker could start there
    startup_seconds: float = 0.0  # until the first worker was ready (weights, compilation)

    def summary(self) -> str:
        first, *rest = super().summary().split("\n")
        line = (
            f"on Ray: {self.workers} worker(s) on {self.nodes} node(s), first ready after "
            f"{self.startup_seconds:.1f} s; {self.lost} worker(s) lost, {len(self.retried)} video(s) retried"
        )
        extra = [f"  node left out {node}: {why}" for node, why in self.left_out.items()]
        return "\n".join([first, line, *extra, *rest])


@dataclass
class _Worker:
    actor: Any
    node: str
    ready: Any  # ObjectRef of describe() until the worker is up, then None
    info: dict[str, Any] = field(default_factory=dict)
    task: Any = None  # ObjectRef of the extract() in flight
    video: tuple[str, Path] | None = None
    frames: int = 0  # progress of the video in flight
    progress_ref: Any = None

    def where(self) -> str:
        return f"{self.info.get('host', '?')} pid {self.info.get('pid', '?')} (node {self.node[:8]})"


def _cause(exc: BaseException) -> str:
    """One line for a Ray error: the original exception when Ray carries it, else the last
    ``SomeError: message`` line of its text (an actor's failed start), else its first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        lines = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {lines[-1] if lines else ''}"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line)]
    if errors:
        return errors[-1]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def extract_on_ray(cfg: ExtractConfig, *, videos: Mapping[str, str | Path] | None = None, progress: bool = True,
                   max_attempts: int = 3, worker_wait_s: float = 600.0) -> ClusterReport:
    """Extract every video in ``cfg.inputs`` (or ``videos``) on a Ray cluster into ``cfg.features`` (a path
    every node sees).

    ``cfg.address``: ``"auto"`` (the cluster running on this machine), ``"HOST:PORT"``, or None
    (``$RAY_ADDRESS``, else a new single-machine Ray instance). Same files, same resume check and same
    report as the local engine; a video whose worker is lost is retried on another one, up to
    ``max_attempts`` times. Raises RuntimeError when the cluster does not complete Ray's handshake within
    ``cfg.connect_timeout`` (:func:`damvad.extraction.ray_connect.check_cluster`) or no worker starts within
    ``worker_wait_s``.
    """
    ray = import_ray()
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    backend, precision = resolve(cfg.backend, cfg.precision, "cpu")  # what a CPU worker runs (a GPU: torch)
    if not ray.is_initialized():
        check_cluster(cfg.address, cfg.connect_timeout)
    # workers run elsewhere (another cwd, another machine): they get absolute paths
    names = {n: p.absolute() for n, p in collect_videos(videos if videos is not None else cfg.inputs).items()}
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint is not None else fetch_i3d_checkpoint()
    spec = ExtractorSpec(crops=cfg.crops, precision=precision, dtype=cfg.dtype, weights_sha256=sha256_file(ckpt),
                         backend=backend, stride=cfg.stride)
    store = open_store(Path(cfg.features).absolute())
    report = ClusterReport()
    todo = plan_videos(store, names, spec, report, cfg.overwrite)
    unreadable: dict[str, VideoError] = {}
    spec.fps = frame_rate(cfg.fps, (path for _, path in todo))
    infos = probe_all(todo, unreadable, spec.fps)
    for name, exc in unreadable.items():  # the error local extraction gives them, without a worker
        report.failed[name] = exc.cause
        log.error("%s", exc)
    todo = [item for item in todo if item[0] in infos]
    if not todo:
        write_manifest(store, report)
        return report
    todo.sort(key=lambda item: infos[item[0]].declared_frames, reverse=True)
    setup = {
        "damvad_version": __version__, "out_dir": str(store.root), "marker": "",
        "probe_video": next((str(path) for _, path in todo if path.exists()), ""), "spec": vars(spec),
        "weights_name": ckpt.name, "compile": cfg.compile, "backend": backend,
        "calibration": [str(Path(c).absolute()) for c in cfg.calibration] if cfg.calibration else None,
    }
    _run_on_cluster(ray, cfg, setup, ckpt, store, report, todo, infos,
                    dict(progress=progress, max_attempts=max_attempts, worker_wait_s=worker_wait_s))
    return report


def _run_on_cluster(ray: Any, cfg: ExtractConfig, setup: dict[str, Any], ckpt: Path, store: FeatureStore,
                    report: ClusterReport, todo: list[tuple[str, Path]], infos: dict[str, VideoInfo],
                    options: dict[str, Any]) -> None:
    """Join (or start) Ray, mark the features folder for the workers to find, schedule ``todo``; clean up."""
    from damvad.utils import atomic_write_text

    started_ray = not ray.is_initialized()
    if started_ray:
        try:
            ray.init(address=cfg.address)
        except (ConnectionError, TimeoutError, ValueError) as exc:
            raise RuntimeError(f"cannot join the Ray cluster at {cfg.address or '$RAY_ADDRESS'}: {exc}") from exc
    for stale in store.root.glob(f"{MARKER_PREFIX}*.check"):  # left by a killed driver
        stale.unlink(missing_ok=True)
    marker = store.root / f"{MARKER_PREFIX}{uuid.uuid4().hex}.check"
    setup["marker"] = marker.name
    scheduler = None
    start = time.perf_counter()
    try:
        atomic_write_text(marker, f"damvad {__version__} Ray extraction in progress\n")
        scheduler = _Scheduler(ray, setup, ray.put(ckpt.read_bytes()), report, infos, cfg.cpus_per_worker,
                               options["max_attempts"], options["worker_wait_s"])
        scheduler.run(todo, options["progress"])
    finally:
        report.seconds = time.perf_counter() - start
        if scheduler is not None:
            scheduler.stop()
        marker.unlink(missing_ok=True)
        remove_stale_temps(store.root)  # this host's dead writers now; other hosts' after a day unchanged
        for name in report.failed:  # a worker lost between the two writes: the .npy alone is not a result
            if not store.json_path(name).exists():
                store.npy_path(name).unlink(missing_ok=True)
        write_manifest(store, report)
        if started_ray:
            ray.shutdown()


class _Scheduler:
    """The driver's loop: start workers on the nodes, hand out videos, requeue a lost worker's video."""

    SCAN_EVERY_S = 5.0
    PROGRESS_EVERY_S = 1.0

    def __init__(
        self,
        ray: Any,
        setup: dict[str, Any],
        weights_ref: Any,
        report: ClusterReport,
        infos: dict[str, VideoInfo],
        cpus_per_worker: int,
        max_attempts: int,
        worker_wait_s: float,
    ) -> None:
        self.ray = ray
        self.setup = setup
        self.weights_ref = weights_ref
        self.report = report
        self.infos = infos
        self.cpus_per_worker = cpus_per_worker
        self.max_attempts = max_attempts
        self.worker_wait_s = worker_wait_s
        self.workers: list[_Worker] = []
        self.node_failures: dict[str, int] = {}
        self.node_retry_at: dict[str, float] = {}
        self.nodes_used: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.finished_frames = 0
        self.actor_class = ray.remote(FeatureWorker)
        self.bar: Any = None
        self._shown: tuple[int, str] = (-1, "")
        self.t0 = time.perf_counter()

    # -- workers ---------------------------------------------------------------------------------------

    def _scale(self) -> None:
        """Start the workers that the alive nodes' resources allow and that are not running yet."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        now = time.monotonic()
        running: dict[str, int] = {}
        for w in self.workers:
            running[w.node] = running.get(w.node, 0) + 1
        for node in self.ray.nodes():
            node_id = node.get("NodeID")
            if not node.get("Alive") or node_id in self.report.left_out or now < self.node_retry_at.get(node_id, 0):
                continue
            shapes = plan_workers(node.get("Resources", {}), self.cpus_per_worker)
            for shape in shapes[running.get(node_id, 0) :]:
                setup = dict(self.setup, num_cpus=shape.num_cpus, num_gpus=shape.num_gpus)
                actor = self.actor_class.options(
                    num_cpus=shape.num_cpus,
                    num_gpus=shape.num_gpus,
                    max_restarts=0,
                    max_concurrency=2,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote(setup, self.weights_ref)
                self.workers.append(_Worker(actor, node_id, actor.describe.remote()))

    def _drop(self, w: _Worker) -> None:
        self.workers.remove(w)
        try:
            self.ray.kill(w.actor, no_restart=True)
        except Exception:  # already gone
            pass

    def _on_ready(self, w: _Worker) -> None:
        try:
            w.info = self.ray.get(w.ready)
        except self.ray.exceptions.RayError as exc:
            self._drop(w)
            why = _cause(exc)
            fails = self.node_failures[w.node] = self.node_failures.get(w.node, 0) + 1
            if fails >= NODE_TRIES:
                self.report.left_out[w.node] = why
                self._write(f"warning: node {w.node[:8]} left out after {fails} failed worker starts: {why}")
            else:
                self.node_retry_at[w.node] = time.monotonic() + 2.0 * fails
                log.info("worker on node %s failed to start (%s); trying again", w.node[:8], why)
            return
        w.ready = None
        self.node_failures[w.node] = 0
        self.nodes_used.add(w.node)
        self.report.workers += 1
        self.report.nodes = len(self.nodes_used)
        if self.report.workers == 1:
            self.report.startup_seconds = time.perf_counter() - self.t0
        log.info("worker ready: %s, %s", w.where(), w.info)

    # -- videos ----------------------------------------------------------------------------------------

    def _on_result(self, w: _Worker, pending: deque[tuple[str, Path]]) -> None:
        assert w.video is not None
        name, path = w.video
        ref, w.task, w.video, w.frames, w.progress_ref = w.task, None, None, 0, None
        report = self.report
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the extraction raised: that video fails, the worker lives
            report.failed[name] = _cause(exc)
            self._write(f"error: {path}: {report.failed[name]}")
            return
        except self.ray.exceptions.RayError as exc:  # the worker is gone (node died, killed, crashed, OOM)
            self._drop(w)
            report.lost += 1
            tries = self.attempts[name] = self.attempts.get(name, 0) + 1
            if tries < self.max_attempts:
                report.retried[name] = tries
                pending.appendleft((name, path))
                self._write(f"worker {w.where()} lost while extracting {name} ({_cause(exc)}); retrying it")
            else:
                report.failed[name] = (
                    f"{tries} workers were lost while extracting it (last: {_cause(exc)}); "
                    "a crash in the decoder or out of memory?"
                )
                self._write(f"error: {path}: {report.failed[name]}")
            return
        if "error" in result:
            report.failed[name] = result["error"]
            self._write(f"error: {path}: {result['error']}")
            return
        if result.get("warning"):
            log.warning("%s: %s", path, result["warning"])
        report.done.append(name)
        report.frames += result["frames"]
        self.finished_frames += result["frames"]

    def _assign(self, pending: deque[tuple[str, Path]]) -> None:
        for w in self.workers:
            if not pending:
                return
            if w.ready is None and w.task is None:
                name, path = w.video = pending.popleft()
                w.task = w.actor.extract.remote(name, str(path), self.infos.get(name))
                log.debug("%s -> worker pid %s on %s", name, w.info.get("pid"), w.where())

    def _poll_progress(self) -> None:
        busy = [w for w in self.workers if w.task is not None]
        for w in busy:
            if w.progress_ref is None:
                w.progress_ref = w.actor.progress.remote()
        refs = {w.progress_ref: w for w in busy}
        if not refs:
            return
        done, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0.2)
        for ref in done:
            w = refs[ref]
            w.progress_ref = None
            try:
                w.frames = int(self.ray.get(ref))
            except self.ray.exceptions.RayError:
                pass  # the worker's task will report what happened

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            log.warning(text)

    def _show(self) -> None:
        """Redraw the bar when something changed (a bar redrawn twice a second floods a log file)."""
        frames = self.finished_frames + sum(w.frames for w in self.workers if w.task is not None)
        ready = sum(w.ready is None for w in self.workers)
        busy = sum(w.task is not None for w in self.workers)
        state = (
            f"{ready} worker(s) on {len(self.nodes_used)} node(s), {busy} busy, "
            f"{len(self.report.done)} done, {len(self.report.failed)} failed"
        )
        if (frames, state) != self._shown:
            self._shown = (frames, state)
            self.bar.n = frames
            self.bar.set_postfix_str(state, refresh=False)
            self.bar.refresh()

    def run(self, todo: list[tuple[str, Path]], progress: bool) -> None:
        from damvad.progress import progress_bar

        pending = deque(todo)
        total = sum(info.declared_frames for info in self.infos.values())
        self.bar = progress_bar(total=total or None, unit="frame", disable=not progress, dynamic_ncols=True,
                                desc="extract")
        next_scan = next_progress = 0.0
        idle_since = time.monotonic()
        try:
            while pending or any(w.task is not None for w in self.workers):
                now = time.monotonic()
                if pending and now >= next_scan:
                    self._scale()
                    next_scan = now + self.SCAN_EVERY_S
                if any(w.ready is None for w in self.workers):
                    idle_since = now
                elif not self.workers and not self._nodes_left():
                    reasons = "; ".join(f"{n[:8]}: {why}" for n, why in self.report.left_out.items())
                    raise RuntimeError(
                        "no node of the cluster can run a worker "
                        f"({reasons or 'no alive node offers a CPU or a GPU'})"
                    )
                elif now - idle_since > self.worker_wait_s:
                    raise RuntimeError(
                        f"no worker ready for {self.worker_wait_s:.0f} s (does the cluster have free CPUs or "
                        "GPUs? see `ray status`); finished videos are kept, rerun to resume"
                    )
                refs = {w.ready: w for w in self.workers if w.ready is not None}
                refs.update({w.task: w for w in self.workers if w.task is not None})
                if refs:
                    done, _ = self.ray.wait(list(refs), num_returns=1, timeout=0.5)
                    if done:
                        done, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=0)
                    for ref in done:
                        w = refs[ref]
                        if ref == w.ready:
                            self._on_ready(w)
                        else:
                            self._on_result(w, pending)
                else:
                    time.sleep(0.5)
                self._assign(pending)
                if now >= next_progress:
                    self._poll_progress()
                    next_progress = now + self.PROGRESS_EVERY_S
                self._show()
        finally:
            self.bar.close()

    def _nodes_left(self) -> bool:
        """Whether an alive node not left out remains (its workers may still start)."""
        return any(
            n.get("Alive") and n.get("NodeID") not in self.report.left_out
            and plan_workers(n.get("Resources", {}), self.cpus_per_worker)
            for n in self.ray.nodes()
        )

    def stop(self) -> None:
        for w in list(self.workers):
            self._drop(w)
