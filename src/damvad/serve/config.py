"""``damvad serve``'s settings: the live detector's (shared with ``detect``) plus cameras, web server,
storage and alert outputs, in the one config schema (a ``serve:`` section, ``key=value`` overrides).

::

    model_file: runs/cams/seed0/model.pt
    serve:
      host: 127.0.0.1             # anything else needs a token
      port: 8080
      data: /var/lib/damvad       # events.db, media/
      token_file: /etc/damvad/token
      cameras:
        - {name: door, source: "rtsp://user:pass@10.0.0.5/stream1"}
        - {name: yard, source: "0"}                     # a webcam
        - {name: test, source: clip.mp4, realtime: true, loop: true}
      webhooks: [http://127.0.0.1:8123/api/webhook/damvad]
      mqtt: {host: 127.0.0.1, port: 1883, topic_prefix: damvad}
      retain_days: 30
      retain_gb: 10
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from damvad.config import check_fields
from damvad.stages import LiveConfig

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # safe in a URL path, an MQTT topic and a file name
CAMERA_KEYS = {"name", "source", "realtime", "loop"}
MQTT_KEYS = {"host", "port", "topic_prefix", "username", "password", "client_id", "keepalive"}
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class CameraSpec:
    """One camera: a unique name and a source (file, URL, webcam index, or ``synth:SEED...``)."""

    name: str
    source: str
    realtime: bool | None = None  # play at the source's frame rate (None: generated streams yes, files no)
    loop: bool = False  # files and generated streams start again at their end


@dataclass
class ServeConfig(LiveConfig):
    sources: list[str] = field(default_factory=list)  # cameras named after their source; folders: their videos
    cameras: list[dict[str, Any]] = field(default_factory=list)  # {name, source, realtime, loop}
    host: str = "127.0.0.1"
    port: int = 8080
    data: str = "damvad-data"  # events.db and media/ (event thumbnails and frames)
    token: str | None = None  # required on every request when set; needed when host is not loopback
    token_file: str | None = None  # the token read from a file (keeps it out of `ps` and the config)
    webhooks: list[str] = field(default_factory=list)  # URLs that get every event as a JSON POST
    mqtt: dict[str, Any] | None = None  # {host, port, topic_prefix, username, password, client_id}
    retain_days: float = 30.0  # event media older than this is deleted (the event rows are kept)
    retain_gb: float = 10.0  # and the oldest media beyond this size
    upload_mb: float = 200.0  # largest clip POST /api/score accepts
    history_minutes: float = 60.0  # score timeline kept in memory per camera

    limits: ClassVar[dict[str, str | tuple]] = {
        **LiveConfig.limits, "port": "[0, 65535]", "retain_days": "(0, inf)", "retain_gb": "(0, inf)",
        "upload_mb": "(0, inf)", "history_minutes": "(0, inf)",
    }

    def __post_init__(self) -> None:
        check_fields(self)
        self.camera_specs()  # names and keys checked now, before anything starts
        self.mqtt_settings()
        for url in self.webhooks:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"webhooks: {url!r} is not an http(s) URL")

    def camera_specs(self) -> list[CameraSpec]:
        """Cameras of the config, then one per positional source; names unique."""
        specs: list[CameraSpec] = []
        for i, cam in enumerate(self.cameras):
            unknown = sorted(set(cam) - CAMERA_KEYS)
            if unknown or "source" not in cam:
                raise ValueError(f"cameras[{i}]: needs `source`, may have {sorted(CAMERA_KEYS)}; got {sorted(cam)}")
            source = str(cam["source"])
            name = str(cam.get("name") or camera_name(source, {s.name for s in specs}))
            realtime = cam.get("realtime")
            if realtime is not None and not isinstance(realtime, bool):
                raise ValueError(f"cameras[{i}].realtime: expected true or false, got {realtime!r}")
            specs.append(CameraSpec(name, source, realtime, bool(cam.get("loop", False))))
        for source in self._expanded_sources():
            specs.append(CameraSpec(camera_name(source, {s.name for s in specs}), source))
        names = [s.name for s in specs]
        for name in names:
            if not NAME.match(name):
                raise ValueError(f"camera name {name!r}: use 1-64 letters, digits, '-' or '_'")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"camera names must be unique, repeated: {duplicates}")
        return specs

    def _expanded_sources(self) -> list[str]:
        """Positional sources with folders expanded into their videos (one camera each), as ``detect`` does."""
        from damvad.video import expand_sources

        return [s for source in self.sources
                for s in ([source] if source.startswith("synth:") else expand_sources([source]))]

    def mqtt_settings(self) -> dict[str, Any] | None:
        """The MQTT broker settings with defaults, or None when no broker is configured."""
        if not self.mqtt:
            return None
        unknown = sorted(set(self.mqtt) - MQTT_KEYS)
        if unknown or not self.mqtt.get("host"):
            raise ValueError(f"mqtt: needs `host`, may have {sorted(MQTT_KEYS)}; got {sorted(self.mqtt)}")
        out = {"port": 1883, "topic_prefix": "damvad", "username": None, "password": None,
               "client_id": f"damvad-{os.getpid()}", "keepalive": 30, **self.mqtt}
        if not NAME.match(str(out["topic_prefix"]).replace("/", "_")):
            raise ValueError(f"mqtt.topic_prefix {out['topic_prefix']!r}: letters, digits, '-', '_' and '/'")
        return out

    def access_token(self) -> str | None:
        """The token (``token``, else ``token_file``, else ``$DAMVAD_TOKEN``); a bind beyond loopback
        without one is refused here, before anything is loaded."""
        token = self.token
        if token is None and self.token_file:
            token = Path(self.token_file).read_text().strip()
            if not token:
                raise ValueError(f"{self.token_file}: the token file is empty")
        token = token or os.environ.get("DAMVAD_TOKEN") or None
        if token is not None and len(token) < 8:
            raise ValueError("the token must have at least 8 characters")
        if token is None and not is_loopback(self.host):
            raise ValueError(f"--host {self.host} is reachable from other machines: give --token (or token_file, "
                             "or $DAMVAD_TOKEN), every request will need it")
        return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def camera_name(source: str, taken: set[str]) -> str:
    """A name for a camera given only by its source: the file's stem, the URL's host, ``webcamN``, ``synthN``."""
    if source.startswith("synth:"):
        base = "synth" + re.sub(r"\D.*", "", source[len("synth:"):].lstrip("/"))
    elif source.isdigit():
        base = f"webcam{source}"
    elif "://" in source:
        parts = urlsplit(source)
        base = (parts.hostname or "stream") + (Path(parts.path).stem and f"-{Path(parts.path).stem}")
    else:
        base = Path(source).stem
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:56] or "camera"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return name
