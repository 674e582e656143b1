"""A cheap stand-in detector for the monitor's tests: a feature function that sees the generated scenes'
explosions (the share of fire-coloured pixels, per 8 frames) and an MLP head set by hand to alert on it, so
an anomaly in a ``synth:`` stream raises an event without I3D or training."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from damvad.backends import FunctionBackend
from damvad.devtools.webhook import Receiver  # noqa: F401 -- the tests import it from here
from damvad.model import build_model
from damvad.modelfile import ModelCard, Threshold, save_model_file

EXPLOSION = "explosion@192-320"  # frames of a 448-frame generated stream: its snippet 3 holds the fireball


def fire_features(x):
    """(N, 3, 64, 224, 224) uint8 or [-1, 1] float -> (N, 7, 1024): each row the share of fire pixels."""
    x = torch.as_tensor(x)
    x = x.float() if x.dtype == torch.uint8 else (x.float() + 1) * 127.5
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    fire = ((r > 200) & (b < 110) & (g > 80)).float().mean(dim=(2, 3))  # (N, T)
    n, t = fire.shape
    steps = fire.reshape(n, t // 8, 8).mean(-1)[:, : t // 8 - 1]  # (N, 7)
    return steps.unsqueeze(-1).expand(n, t // 8 - 1, 1024).contiguous()


FIRE = FunctionBackend(fire_features, accepts_uint8=True)  # the stand-in I3D of the monitor's tests


def fire_model(path: Path, threshold: float = 0.5) -> Path:
    """An ``mlp`` head scoring sigmoid(2000 * fire share - 10): above 0.5 from 0.5 % fire pixels."""
    model = build_model("mlp", mlp_hidden=1, dropout=0.0)
    first, last = model.mlp[1], model.mlp[3]
    with torch.no_grad():
        first.weight.fill_(1.0 / 1024)
        first.bias.zero_()
        last.weight.fill_(2000.0)
        last.bias.fill_(-10.0)
    return save_model_file(path, model, ModelCard(threshold=Threshold(value=threshold)))


def synth(seed: int, events: str = EXPLOSION, frames: int = 448) -> str:
    return f"synth:{seed}?frames={frames}" + (f"&events={events}" if events else "")


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generated_file(path: Path, seed: int = 7, events: str = EXPLOSION, frames: int = 448) -> Path:
    """A generated scene written as a video file (the monitor's file camera)."""
    from damvad.serve.sources import parse_synth
    from damvad.synth import synthetic_stream, write_video

    write_video(path, synthetic_stream(**parse_synth(synth(seed, events, frames))), 25)
    return path


def start_server(tmp_path: Path, cameras: list[dict], **settings):
    """A real ``damvad serve`` (uvicorn on a free loopback port, in a thread) with the fire stand-in."""
    from damvad.serve.alerts import Backoff
    from damvad.serve.config import ServeConfig
    from damvad.serve.server import Server

    model = tmp_path / "fire.pt"
    if not model.exists():
        fire_model(model)
    cfg = ServeConfig(model_file=str(model), cameras=cameras, port=0, data=str(tmp_path / "data"), **settings)
    return Server(cfg, i3d=FIRE, backoff=Backoff(first=0.05, cap=0.2)).start()


def get(url: str, token: str | None = None, headers: dict | None = None, data: bytes | None = None,
        method: str | None = None):
    """(status, body as JSON when it is JSON else bytes) of a request to the test server."""
    import json
    import urllib.error
    import urllib.request

    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            body, status, kind = r.read(), r.status, r.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        body, status, kind = exc.read(), exc.code, exc.headers.get("content-type", "")
    return status, json.loads(body) if kind.startswith("application/json") else body


@pytest.fixture()
def broker(tmp_path):
    """host, port of a real MQTT broker: $DAMVAD_TEST_MQTT (CI starts one), else a mosquitto started here."""
    given = os.environ.get("DAMVAD_TEST_MQTT")
    if given:
        host, port = given.rsplit(":", 1)
        yield host, int(port)
        return
    binary = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
    if binary is None:
        pytest.skip("no MQTT broker: install mosquitto (apt-get install mosquitto; .ci/run does) "
                    "or set DAMVAD_TEST_MQTT=host:port")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _accepts(port), 20, "mosquitto to listen")
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def subscriber(host: str, port: int, topic: str):
    """A paho client collecting (topic, payload) of ``topic``; returns (messages, client)."""
    mqtt = pytest.importorskip("paho.mqtt.client")
    got: list[tuple[str, str]] = []
    ready = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *a: ready.set()
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload.decode()))
    client.connect(host, port)
    client.loop_start()
    assert ready.wait(20), "subscription not acknowledged"
    return got, client
