"""``damvad serve`` for real: uvicorn on loopback, two generated streams and a file through the live path,
an anomaly's event in SQLite, on the API, on a webhook (and MQTT when a broker runs), kept over a restart;
access rules; uploads."""

from __future__ import annotations

import sqlite3

import pytest

from damvad.cli import main
from damvad.config import ConfigError, load_config
from damvad.serve.camera import redact
from damvad.serve.config import ServeConfig, camera_name
from servetools import Receiver, broker, generated_file, get, start_server, subscriber, synth, wait_for  # noqa: F401

TOKEN = "s3cret-token-for-tests"


@pytest.fixture()
def cameras(tmp_path):
    video = generated_file(tmp_path / "lobby.mp4")  # with the explosion
    return [{"name": "plaza", "source": synth(1), "realtime": False},
            {"name": "street", "source": synth(2, events=""), "realtime": False},
            {"name": "lobby", "source": str(video)}]


def _ended(server):
    status, cams = get(f"{server.url}/api/cameras")
    return status == 200 and all(c["state"] == "ended" for c in cams) and cams


def test_an_anomaly_becomes_an_event_everywhere_and_a_restart_keeps_it(tmp_path, cameras, broker):  # noqa: F811
    host, port = broker
    got, client = subscriber(host, port, "damvad/#")
    hook = Receiver(fail_first=1)
    server = start_server(tmp_path, cameras, webhooks=[hook.url], mqtt={"host": host, "port": port})
    try:
        cams = wait_for(lambda: _ended(server), 120, "the three streams to end")
        assert {c["name"]: c["frames"] for c in cams} == {"plaza": 448, "street": 448, "lobby": 448}
        status, events = get(f"{server.url}/api/events")
        assert status == 200
        assert sorted((e["camera"], e["start_frame"], e["state"]) for e in events) == [
            ("lobby", 192, "closed"), ("plaza", 192, "closed")]  # the explosions; the street stays quiet
        plaza = next(e for e in events if e["camera"] == "plaza")
        assert plaza["peak_score"] > 0.99 and plaza["thumbnail"] and plaza["frames"]
        status, scores = get(f"{server.url}/api/scores?since=0&camera=plaza")
        assert [p[2] for p in scores["cameras"]["plaza"]] == [0, 0, 0, 1, 0, 0, 0]
        status, picture = get(server.url + plaza["frames"][0])
        assert status == 200 and picture[:2] == b"\xff\xd8"  # a JPEG
        # the webhook (its first try refused) and MQTT got the new and end messages of both events
        wait_for(lambda: len(hook.received) == 4, 30, "webhook deliveries")
        assert sorted((m["after"]["camera"], m["type"]) for m in hook.received) == [
            ("lobby", "end"), ("lobby", "new"), ("plaza", "end"), ("plaza", "new")]
        wait_for(lambda: ("damvad/plaza/alert", "OFF") in got, 30, "MQTT messages (the alert's end is the last)")
        assert sum(t == "damvad/plaza/events" for t, _ in got) == 2
        assert not any(t.startswith("damvad/street/") for t, _ in got)
        status, acked = get(f"{server.url}/api/events/{plaza['id']}/ack", method="POST", data=b"",
                            headers={"X-Requested-With": "damvad"})
        assert status == 200 and acked["acknowledged_ts"]
    finally:
        server.stop()
        client.loop_stop()
        hook.close()
    db = sqlite3.connect(tmp_path / "data" / "events.db")
    assert db.execute("SELECT camera, state FROM events ORDER BY camera").fetchall() == [
        ("lobby", "closed"), ("plaza", "closed")]
    db.close()
    again = start_server(tmp_path, [{"name": "plaza", "source": synth(1, events="", frames=64), "realtime": False}])
    try:
        status, events = get(f"{again.url}/api/events?camera=plaza")
        assert [(e["id"], e["state"]) for e in events] == [(plaza["id"], "closed")]
        assert events[0]["acknowledged_ts"] == acked["acknowledged_ts"]
        status, picture = get(again.url + events[0]["thumbnail"])
        assert status == 200 and picture[:2] == b"\xff\xd8"
    finally:
        again.stop()


def test_with_a_token_every_request_needs_it(tmp_path):
    server = start_server(tmp_path, [{"name": "a", "source": synth(1, events="", frames=64), "realtime": False}],
                          token=TOKEN)
    try:
        for path in ("/", "/api/health", "/api/cameras", "/api/events", "/static/app.js"):
            assert get(server.url + path)[0] == 401, path
            assert get(server.url + path, token="wrong-token-123")[0] == 401, path
            assert get(server.url + path, token=TOKEN)[0] == 200, path
        status, _ = get(f"{server.url}/api/health?token={TOKEN}")
        assert status == 200
    finally:
        server.stop()


def test_beyond_loopback_a_token_is_required_before_anything_starts(tmp_path, capsys):
    with pytest.raises(ValueError, match="reachable from other machines: give --token"):
        ServeConfig(host="0.0.0.0", sources=["0"]).access_token()
    assert ServeConfig(host="::1").access_token() is None and ServeConfig(host="127.0.0.2").access_token() is None
    code = main(["serve", "0", "--model", str(tmp_path / "none.pt"), "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert code == 2 and "give --token" in capsys.readouterr().err
    assert not (tmp_path / "events.db").exists()  # refused before anything was made


def test_requests_for_other_hosts_uploads_and_paths_are_refused(tmp_path):
    server = start_server(tmp_path, [{"name": "a", "source": synth(1, events="", frames=64), "realtime": False}],
                          upload_mb=2)
    try:
        assert get(f"{server.url}/api/health", headers={"Host": "evil.example:80"})[0] == 400  # DNS rebinding
        assert get(f"{server.url}/static/..%2Fconfig.py")[0] == 404
        assert get(f"{server.url}/api/events/1/frames/..%2F..%2Fevents.db.jpg")[0] in (404, 422)
        assert get(f"{server.url}/api/events/1/ack", method="POST", data=b"")[0] == 403  # no CSRF header
        assert get(f"{server.url}/api/score", data=b"x" * 10, headers={"Content-Type": "text/plain"})[0] == 415
        big = get(f"{server.url}/api/score", data=b"\0" * 2_100_000, headers={"Content-Type": "video/mp4"})
        assert big[0] == 413
        status, body = get(f"{server.url}/api/score", data=b"not a video at all",
                           headers={"Content-Type": "video/mp4"})
        assert status == 400 and "cannot open as a video" in body["detail"] and str(tmp_path) not in body["detail"]
        clip = generated_file(tmp_path / "clip.mp4", seed=3, frames=320)
        status, body = get(f"{server.url}/api/score", data=clip.read_bytes(), headers={"Content-Type": "video/mp4"})
        assert status == 200 and body["frames"] == 320 and [c["alert"] for c in body["clips"]] == [0, 0, 0, 1, 0]
        assert [(e["start_frame"], e["end_frame"]) for e in body["events"]] == [(192, 256)]
        assert not any((tmp_path / "data" / "uploads").iterdir())  # uploads are deleted after scoring
    finally:
        server.stop()


def test_cameras_come_from_the_one_config_schema(tmp_path):
    path = tmp_path / "cams.yaml"
    path.write_text("model_file: m.pt\nthreshold: 0.7\ndetect: {close_after: 9}\nserve:\n  cameras:\n"
                    "    - {name: door, source: 'rtsp://u:p@10.0.0.5/s'}\n  mqtt: {host: broker}\n")
    cfg = load_config(ServeConfig, path, ["serve.port=9000", "mqtt.port=1884", "close_after=3"], sources=["clip.mp4"])
    assert (cfg.model_file, cfg.threshold, cfg.port, cfg.close_after) == ("m.pt", 0.7, 9000, 3.0)
    assert [(c.name, c.source) for c in cfg.camera_specs()] == [("door", "rtsp://u:p@10.0.0.5/s"), ("clip", "clip.mp4")]
    assert cfg.mqtt_settings()["host"] == "broker" and cfg.mqtt_settings()["port"] == 1884
    with pytest.raises(ConfigError, match="retain_days: must be > 0"):
        load_config(ServeConfig, None, ["retain_days=0"])


def test_camera_names_and_config_checks(tmp_path):
    assert camera_name("rtsp://u:p@cam.local/live/main", set()) == "cam-local-main"
    assert redact("rtsp://admin:hunter2@cam.local:554/live") == "rtsp://admin:***@cam.local:554/live"
    assert camera_name("/videos/door.mp4", {"door"}) == "door-2"
    assert camera_name("synth:12?frames=9", set()) == "synth12" and camera_name("0", set()) == "webcam0"
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("b.mp4", "a.avi", "notes.txt"):
        (folder / name).write_bytes(b"")
    assert [c.name for c in ServeConfig(sources=[str(folder), "synth:3"]).camera_specs()] == ["a", "b", "synth3"]
    with pytest.raises(ValueError, match="unique"):
        ServeConfig(cameras=[{"name": "a", "source": "x.mp4"}, {"name": "a", "source": "y.mp4"}])
    with pytest.raises(ValueError, match="camera name"):
        ServeConfig(cameras=[{"name": "../etc", "source": "x.mp4"}])
    with pytest.raises(ValueError, match="mqtt: needs `host`"):
        ServeConfig(mqtt={"port": 1883})
