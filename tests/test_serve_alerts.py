"""Alerts out, against real receivers on loopback: a webhook that fails first, and a mosquitto broker."""

from __future__ import annotations

import json

from damvad.serve.alerts import Backoff, MqttSender, Targets, WebhookSender
from damvad.serve.store import EventStore
from servetools import Receiver, broker, free_port, subscriber, wait_for  # noqa: F401 - broker: a fixture

FAST = Backoff(first=0.05, cap=0.2, attempts=20)


def _event_changes(store: EventStore, targets: Targets) -> None:
    event = store.open_event("door", 192, 256, 1000.0, 0.9, 0.5, targets.event_messages("new", None))
    store.update_event(event.id, targets.event_messages("end", event), state="closed", end_frame=320, end_ts=1003.0)


def test_webhook_retries_with_backoff_until_the_receiver_answers_in_order(tmp_path):
    receiver = Receiver(fail_first=3)
    store = EventStore(tmp_path / "events.db")
    sender = WebhookSender(store, receiver.url, FAST).start()
    try:
        _event_changes(store, Targets(webhooks=[receiver.url]))
        sender.wake()
        wait_for(lambda: len(receiver.received) == 2, 30, "two webhook deliveries")
        assert receiver.attempts == 5  # 3 refused, then both
        assert [m["type"] for m in receiver.received] == ["new", "end"]
        new, end = receiver.received
        assert new["before"] is None and new["after"]["state"] == "open" and new["after"]["camera"] == "door"
        assert end["before"]["state"] == "open" and end["after"]["state"] == "closed"
        assert end["after"]["end_frame"] == 320
        rows = store.outbox()
        assert all(r["delivered_ts"] for r in rows) and rows[0]["attempts"] == 4
    finally:
        sender.stop()
        receiver.close()


def test_a_dead_webhook_never_blocks_the_event_and_retries_after_a_restart(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/nobody"
    store = EventStore(tmp_path / "events.db")
    sender = WebhookSender(store, url, Backoff(first=30.0)).start()
    _event_changes(store, Targets(webhooks=[url]))  # returns at once: the event is committed
    assert store.events()[0].state == "closed"
    sender.wake()
    wait_for(lambda: store.outbox()[0]["attempts"] >= 1, 30, "a failed attempt")
    sender.stop()
    store.close()
    receiver = Receiver()
    store = EventStore(tmp_path / "events.db")
    with store._tx():  # the receiver moved: point the queued messages at it, due now
        store._db.execute("UPDATE outbox SET target = ?, next_ts = 0", (f"webhook:{receiver.url}",))
    sender = WebhookSender(store, receiver.url, FAST).start()
    try:
        wait_for(lambda: len(receiver.received) == 2, 30, "deliveries after the restart")
    finally:
        sender.stop()
        receiver.close()


def test_mqtt_broker_receives_events_per_camera_and_alert_state(tmp_path, broker):  # noqa: F811
    host, port = broker
    got, client = subscriber(host, port, "test23/#")
    store = EventStore(tmp_path / "events.db")
    settings = {"host": host, "port": port, "topic_prefix": "test23", "client_id": "damvad-test", "keepalive": 30}
    sender = MqttSender(store, settings, FAST).start()
    try:
        _event_changes(store, Targets(mqtt_prefix="test23"))
        sender.wake()
        wait_for(lambda: ("test23/door/alert", "OFF") in got, 30, "the last message (the alert's end)")
        topics = [t for t, _ in got]
        assert ("test23/available", "online") in got
        assert topics.count("test23/door/events") == 2
        assert [p for t, p in got if t == "test23/door/alert"] == ["ON", "OFF"]
        kinds = [json.loads(p)["type"] for t, p in got if t == "test23/events"]
        assert kinds == ["new", "end"]
    finally:
        sender.stop()
        client.loop_stop()
        client.disconnect()
    assert store.outbox() and all(r["delivered_ts"] for r in store.outbox())
