"""Bad input: a clear message, a meaningful exit code, and nothing silent or lost (issues 11 and 22).

``CASES`` is the table of command lines: ``(id, argv, exit code, fragments the message must hold[, check])``.
``{i.NAME}`` placeholders are inputs that :class:`badinputs.Inputs` makes on demand, so a new case is one line
(plus one property for a new kind of input; ``check`` names one of its methods). The tests after the table
need more than one command: flaky HTTP sources served by a real local server. What is not about the command
line lives beside its module (resume checks: test_extraction_plan; a full disk: test_extraction_local;
config values: test_config; a resumed run's config: test_train; record consistency: test_store).
"""

from __future__ import annotations

import http.server
import shlex
import socketserver
import threading
import time
from pathlib import Path

import pytest

from badinputs import Inputs, write_faststart_mp4
from damvad.backends import FunctionBackend
from damvad.cli import main
from damvad.extraction import backend as backend_mod
from videotools import fake_features

TRAIN = "train --dataset {i.data} --features {i.feats} --out {i.run} --iterations 4 --variant mlp --quiet"
EVALUATE = "evaluate {i.model} --dataset {i.data} --out {i.tmp}/eval --quiet"
DETECT = "detect --model {i.model} --no-compile --quiet"
DETECT_RUN = "detect --model {run} --no-compile --quiet {{i.videos}}/good.mp4"

CASES = [
    # 4. configs: refused with the file (or the command line) named, before a run folder exists
    ("yaml-malformed", TRAIN + " --config {i.yaml_malformed}", 2, ["{i.yaml_malformed}", "not valid YAML"],
     "no_run_folder"),
    ("yaml-python-tag", TRAIN + " --config {i.yaml_python_tag}", 2, ["{i.yaml_python_tag}", "python/object"],
     "no_run_folder"),
    ("yaml-wrong-type", TRAIN + " --config {i.yaml_twenty}", 2, ["{i.yaml_twenty}", "iterations", "'twenty'"],
     "no_run_folder"),
    ("override-wrong-type", TRAIN + " lr=fast", 2, ["lr", "expected a number", "'fast'"], "no_run_folder"),
    ("override-out-of-range", TRAIN + " eval_every=0", 2, ["eval_every", ">= 1", "got 0"], "no_run_folder"),
    ("override-fraction-range", TRAIN + " val_fraction=1.5", 2, ["val_fraction", "got 1.5"], "no_run_folder"),
    ("override-unknown-model-key", TRAIN + " 'model={{colour: red}}'", 2, ["colour"], "no_run_folder"),
    # 4. hostile and damaged files: refused, named, never unpickled
    ("resume-hostile-checkpoint", TRAIN + " --out {i.run_hostile} --resume", 2,
     ["{i.run_hostile}/seed0/checkpoint.pt", "refused"], "nothing_executed"),
    ("resume-truncated-checkpoint", TRAIN + " --out {i.run_truncated} --resume", 2,
     ["{i.run_truncated}/seed0/checkpoint.pt", "truncated or corrupt"]),
    ("extract-hostile-checkpoint", "extract {i.videos}/good.mp4 --out {i.tmp}/f --checkpoint {i.i3d_hostile}", 2,
     ["{i.i3d_hostile}", "refusing"], "nothing_executed"),
    ("extract-hostile-torch-checkpoint", "extract {i.videos}/good.mp4 --out {i.tmp}/f --checkpoint {i.i3d_hostile_zip}",
     2, ["{i.i3d_hostile_zip}", "refused"], "nothing_executed"),
    ("detect-hostile-model", DETECT.replace("{i.model}", "{i.i3d_hostile_zip}") + " {i.videos}/good.mp4", 2,
     ["{i.i3d_hostile_zip}", "refused"], "nothing_executed"),
    # 3. detect: one bad source is reported, the others are scored; an existing output survives a failed run
    ("detect-folder-with-bad-file", DETECT + " {i.videos} -o {i.tmp}/rows.csv", 1,
     ["{i.videos}/bad.mp4", "ERROR"], "good_video_scored"),
    ("detect-missing-file-keeps-output", DETECT + " {i.tmp}/nope.mp4 -o {i.old_results}", 1,
     ["nope.mp4", "does not exist"], "old_results_kept"),
    # 5. non-finite features: the file and the video are named
    ("nan-in-test-video", EVALUATE + " --features {i.feats_nan_test}", 2,
     ["{i.feats_nan_test}/test_anom_001.npy", "'test_anom_001'", "snippet"]),
    ("nan-in-held-out-video", "calibrate {i.model} --dataset {i.data} --features {i.feats_nan_held_out}", 2,
     ["{i.feats_nan_held_out}/train_norm_000.npy", "'train_norm_000'"]),
    # 6. a record that contradicts itself is refused; detect warns about frames lost as extract does
    ("record-frames-vs-ranges", EVALUATE + " --features {i.feats_inconsistent}", 2,
     ["test_norm_000", "snippet_ranges"]),
    ("detect-truncated-avi", DETECT + " {i.avi_truncated}", 0, ["{i.avi_truncated}", "container declares 200 frames"]),
    ("detect-truncated-mp4", DETECT + " {i.mp4_truncated}", 0, ["{i.mp4_truncated}", "container declares 243 frames"]),
    # 7. a run folder stands for its one seed's model; several seeds are listed with how to choose (issue 22)
    ("detect-run-folder-one-seed", DETECT_RUN.format(run="{i.run_one_seed}") + " -o {i.tmp}/rows.csv", 0, [],
     "good_video_scored"),
    ("calibrate-run-folder-one-seed", "calibrate {i.run_one_seed} --dataset {i.data} --features {i.feats}", 0, [],
     "threshold_stored_in_the_seed"),
    ("detect-run-folder-several-seeds", DETECT_RUN.format(run="{i.run_two_seeds}"), 2,
     ["{i.run_two_seeds}/seed0/model.pt", "{i.run_two_seeds}/seed1/model.pt", "give one of them"]),
    ("export-run-folder-several-seeds", "export --out {i.tmp}/exported --model {i.run_two_seeds}", 2,
     ["{i.run_two_seeds}: a run folder with 2 seeds"], "nothing_exported"),
    # 8. the words: the file or source named, and the fix
    ("extract-fp16-on-the-cpu", "extract {i.videos}/good.mp4 --out {i.tmp}/f --precision fp16 --device cpu", 2,
     ["fp16 needs a CUDA device", "use --precision bf16 or fp32"]),
    ("detect-model-with-bad-crops", DETECT.replace("{i.model}", "{i.model_bad_crops}") + " {i.videos}/good.mp4", 2,
     ["{i.model_bad_crops}: damaged feature contract", "crops", "'7'"]),
    ("dataset-csv-lists-missing-videos", "dataset {i.csv_missing}", 1,
     ["1 of 2 listed video file(s) do not exist: {i.tmp}/gone.mp4"], "summary_printed"),
    ("extract-disk-full-mid-array", "extract {i.videos}/good.mp4 --out {i.disk_full}", 1, [], "no_space_named"),
    ("extract-ray-address-never-answers", "extract {i.videos}/good.mp4 --out {i.tmp}/f --engine ray --address "
     "{i.silent_address} --connect-timeout 2 --quiet", 2,
     ["{i.silent_address} within 2 s", "did not complete Ray's handshake", "--connect-timeout"],
     "nothing_left_running"),
    # 9. times from the frames' timestamps; frame numbers unchanged
    ("detect-variable-frame-rate", DETECT + " {i.vfr_video} -o {i.tmp}/times.csv", 0,
     ["{i.vfr_video}: variable frame rate", "times come from the frames' timestamps"], "vfr_times"),
    ("detect-no-timestamps", DETECT + " {i.raw_h264} -o {i.tmp}/times.csv", 0,
     ["{i.raw_h264}: the frames carry no timestamps", "declared rate, 25 fps"], "declared_rate_times"),
]


@pytest.fixture()
def fake_i3d(monkeypatch):
    """I3D replaced by a cheap stand-in, except where a checkpoint is given (its loading is under test)."""
    real = backend_mod.open_backend

    def build(**settings):
        if settings.get("checkpoint") is not None:
            return real(**settings)
        return FunctionBackend(fake_features, name=settings.get("backend") or "", weights_sha256="fake-i3d",
                               precision=settings.get("precision") or "fp32")

    monkeypatch.setattr(backend_mod, "open_backend", build)


@pytest.fixture()
def inputs(tmp_path, monkeypatch):
    made = Inputs(tmp_path, monkeypatch)
    yield made
    for cleanup in made.cleanups:
        cleanup()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, inputs, fake_i3d, capsys, caplog):
    _, argv, code, fragments, *check = case
    got = main(shlex.split(argv.format(i=inputs)))
    out, err = capsys.readouterr()
    err += caplog.text  # warnings logged (on stderr outside pytest)
    assert got == code, f"exit code {got}, expected {code}; stderr:\n{err}"
    for fragment in fragments:
        assert fragment.format(i=inputs) in err, f"{fragment.format(i=inputs)!r} not in stderr:\n{err}"
    if check:
        inputs._err = err
        getattr(inputs, check[0])(out)


# ---------------------------------------------------------------------------------------------- 1. streams


class _Server:
    """A local HTTP server for one file whose first ``cut`` requests deliver half of it, then close (or
    stall); later requests get the whole file. Counts requests; nothing leaves the machine."""

    def __init__(self, data: bytes, cut: int, stall: bool = False, limit: int = 40):
        self.data, self.cut, self.stall, self.limit, self.requests = data, cut, stall, limit, 0
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.requests > outer.limit:  # a client that replays forever is stopped here
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()
                try:
                    if outer.requests <= outer.cut:
                        self.wfile.write(outer.data[: len(outer.data) // 2])
                        self.wfile.flush()
                        if outer.stall:
                            outer.release.wait(30)
                    else:
                        self.wfile.write(outer.data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip.mp4"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def served(tmp_path, monkeypatch):
    """A factory of local HTTP servers for a 243-frame MP4; quick reconnects and a short read timeout."""
    import damvad.detect
    import damvad.video

    policy = getattr(damvad.detect, "ReconnectPolicy", None)  # (getattr: the same test runs on older code)
    if policy is not None:
        monkeypatch.setattr(damvad.detect, "RECONNECT", policy(attempts=3, wait=0.0, max_outage=30))
    monkeypatch.setattr(damvad.video, "NETWORK_TIMEOUT", (5.0, 1.0), raising=False)
    video = write_faststart_mp4(tmp_path / "clip.mp4", 243)
    servers = []

    def serve(cut: int, stall: bool = False, limit: int = 40) -> _Server:
        servers.append(_Server(video.read_bytes(), cut, stall, limit))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def _rows(path: Path) -> list[list[int]]:
    lines = path.read_text().splitlines()[1:]
    return [[int(x) for x in line.split(",")[2:4]] for line in lines]


def test_http_file_cut_on_every_request_is_reported_not_replayed(served, inputs, fake_i3d, capsys):
    server = served(cut=1000)
    start = time.monotonic()
    code = main(shlex.split(DETECT.format(i=inputs)) + [server.url, "-o", str(inputs.tmp / "rows.csv")])
    err = capsys.readouterr().err
    assert code == 1 and "ERROR" in err and "reconnect" in err
    # one probe, one decode, 3 reconnects
    assert server.requests <= 5, f"{server.requests} requests: retries must be bounded across the whole source"
    rows = _rows(inputs.tmp / "rows.csv")
    assert rows and rows[-1][1] <= 243, f"frames replayed under new numbers: {rows}"
    assert [r[0] for r in rows] == [64 * k for k in range(len(rows))]
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("decoder_threads", ["1", "3"])
def test_http_file_cut_once_resumes_at_the_right_frame(served, inputs, fake_i3d, capsys, monkeypatch, decoder_threads):
    """Unthreaded, the decoder hands out the damaged frame cut in half before the error; it must not be kept."""
    monkeypatch.setenv("DAMVAD_DECODER_THREADS", decoder_threads)
    server = served(cut=2)  # the probe's request and the first decode are cut
    code = main(shlex.split(DETECT.format(i=inputs)) + [server.url, "-o", str(inputs.tmp / "rows.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert server.requests == 3
    assert _rows(inputs.tmp / "rows.csv") == [[0, 64], [64, 128], [128, 192], [192, 243]]
    assert main(shlex.split(DETECT.format(i=inputs)) + [str(inputs.tmp / "clip.mp4"), "-o",
                                                         str(inputs.tmp / "file.csv")]) == 0
    scores = [line.split(",")[6] for line in (inputs.tmp / "rows.csv").read_text().splitlines()[1:]]
    assert scores == [line.split(",")[6] for line in (inputs.tmp / "file.csv").read_text().splitlines()[1:]]


def test_http_file_that_stalls_is_given_up_in_bounded_time(served, inputs, fake_i3d, capsys):
    server = served(cut=1000, stall=True, limit=6)
    start = time.monotonic()
    code = main(shlex.split(DETECT.format(i=inputs)) + [server.url, "-o", str(inputs.tmp / "rows.csv")])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 1 and "ERROR" in err
    assert "no data arrived for 1 s" in err and "Immediate exit requested" not in err  # said as it is
    assert server.requests <= 5 and elapsed < 25
    assert _rows(inputs.tmp / "rows.csv")[-1][1] <= 243
