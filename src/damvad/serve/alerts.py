"""Alerts out: every event change goes to each webhook (HTTP POST, JSON) and to an MQTT broker, from the
store's outbox (:mod:`damvad.serve.store`), each target on its own thread: a slow or dead receiver never
blocks scoring, a failed delivery is retried with exponential back-off, in order, and survives a restart.

Payloads follow Frigate's ``frigate/events``: ``{"type": "new" | "update" | "end", "before": {...} | null,
"after": {...}}`` with the event as ``/api/events/ID`` shows it. MQTT topics (``PREFIX`` = ``mqtt.topic_prefix``,
default ``damvad``):

* ``PREFIX/available``: ``online`` / ``offline`` (retained; ``offline`` is also the broker's last will);
* ``PREFIX/events``: every event message; ``PREFIX/CAMERA/events``: the camera's;
* ``PREFIX/CAMERA/alert``: ``ON`` / ``OFF`` (retained), e.g. for a Home Assistant binary sensor.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from damvad import __version__
from damvad.serve.store import Event, EventStore, Message, Outgoing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Retry delays: ``first`` seconds, doubling up to ``cap``; given up after ``attempts`` tries (~2 h)."""

    first: float = 1.0
    cap: float = 600.0
    attempts: int = 20

    def delay(self, attempts_so_far: int) -> float:
        return min(self.cap, self.first * 2 ** attempts_so_far)


@dataclass
class Targets:
    """Where event messages go."""

    webhooks: list[str] = field(default_factory=list)
    mqtt_prefix: str | None = None  # None: no broker

    def names(self) -> list[str]:
        return [f"webhook:{u}" for u in self.webhooks] + (["mqtt"] if self.mqtt_prefix is not None else [])

    def event_messages(self, kind: str, before: Event | None) -> list[Outgoing]:
        """The messages one event change sends ("new", "update", "end"); payloads see the committed event."""
        def payload(event: Event) -> dict[str, Any]:
            return {"type": kind, "before": before.to_dict() if before else None, "after": event.to_dict()}

        out: list[Outgoing] = [(f"webhook:{u}", None, payload, False) for u in self.webhooks]
        if self.mqtt_prefix is not None:
            p = self.mqtt_prefix
            out += [("mqtt", f"{p}/events", payload, False),
                    ("mqtt", lambda e: f"{p}/{e.camera}/events", payload, False)]
            if kind in ("new", "end"):
                out.append(("mqtt", lambda e: f"{p}/{e.camera}/alert", "ON" if kind == "new" else "OFF", True))
        return out


class Sender:
    """Delivers one target's queued messages on a thread of its own, in order, retrying with back-off."""

    def __init__(self, store: EventStore, target: str, backoff: Backoff | None = None):
        self.store, self.target, self.backoff = store, target, backoff or Backoff()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"damvad-{target[:40]}", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def deliver(self, message: Message) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            messages, next_ts = self.store.due(self.target)
            if messages:
                for message in messages:
                    if self._stop.is_set() or not self._send(message):
                        break  # a failure: the store now holds its retry time, which the next due() gives
                continue
            self._wake.wait(30.0 if next_ts is None else min(30.0, max(0.0, next_ts - time.time())))

    def _send(self, message: Message) -> bool:
        try:
            self.deliver(message)
        except Exception as exc:  # noqa: BLE001 - any failure of the receiver is retried
            give_up = message.attempts + 1 >= self.backoff.attempts
            delay = self.backoff.delay(message.attempts)
            log.warning("%s: delivery %d failed (%s)%s", self.target, message.id, exc,
                        "; given up" if give_up else f"; retry in {delay:.0f} s")
            self.store.retry_later(message.id, delay, f"{type(exc).__name__}: {exc}", give_up)
            return give_up  # a message given up no longer holds the queue
        self.store.delivered(message.id)
        return True


class WebhookSender(Sender):
    """POSTs each message's JSON to one URL; any status but 2xx is a failure."""

    def __init__(self, store: EventStore, url: str, backoff: Backoff | None = None, timeout: float = 10.0):
        super().__init__(store, f"webhook:{url}", backoff)
        self.url, self.timeout = url, timeout

    def deliver(self, message: Message) -> None:
        request = urllib.request.Request(self.url, data=message.payload.encode(), method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"damvad/{__version__}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(self.url, response.status, "not a 2xx answer", response.headers, None)


class MqttSender(Sender):
    """Publishes to an MQTT broker with paho-mqtt (``pip install 'damvad[mqtt]'``), QoS 1."""

    def __init__(self, store: EventStore, settings: dict[str, Any], backoff: Backoff | None = None):
        super().__init__(store, "mqtt", backoff)
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise RuntimeError("mqtt needs paho-mqtt: pip install 'damvad[mqtt]'") from None
        self.prefix = settings["topic_prefix"]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings["client_id"])
        if settings.get("username"):
            self.client.username_pw_set(settings["username"], settings.get("password"))
        self.client.will_set(f"{self.prefix}/available", "offline", qos=1, retain=True)
        self.client.on_connect = self._connected
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(settings["host"], int(settings["port"]), int(settings["keepalive"]))
        self.client.loop_start()

    def _connected(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if not getattr(reason, "is_failure", False):
            client.publish(f"{self.prefix}/available", "online", qos=1, retain=True)
            self.wake()

    def deliver(self, message: Message) -> None:
        if not self.client.is_connected():
            raise ConnectionError("not connected to the broker")
        info = self.client.publish(message.topic or f"{self.prefix}/events", message.payload, qos=1,
                                   retain=message.retain)
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise ConnectionError(f"the broker did not acknowledge (rc {info.rc})")

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self.client.is_connected():
            self.client.publish(f"{self.prefix}/available", "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
