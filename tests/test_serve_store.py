"""The monitor's events database and media: versioned schema, nothing announced is lost, retention."""

from __future__ import annotations

import sqlite3
import time

import pytest

from damvad.serve.media import FrameRing, MediaWriter, Recording, apply_retention
from damvad.serve.store import SCHEMA_VERSION, EventStore, SchemaError


def test_an_open_event_survives_a_crash_and_is_marked_interrupted(tmp_path):
    store = EventStore(tmp_path / "events.db")
    event = store.open_event("door", 64, 128, 1000.0, 0.9, 0.5, [("webhook:http://x", None, lambda e: {"id": e.id},
                                                                   False)])
    # no close(): the process dies with the event open
    again = EventStore(tmp_path / "events.db")
    assert again.interrupted == 1
    kept = again.get(event.id)
    assert kept.state == "interrupted" and kept.camera == "door" and kept.peak_score == 0.9
    assert kept.end_ts == pytest.approx(kept.updated_ts)
    queued = again.outbox("webhook:http://x")
    assert [m["payload"] for m in queued] == [f'{{"id": {event.id}}}']  # the alert waits to be delivered


def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "events.db"
    EventStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaError, match="newer damvad"):
        EventStore(path)


def test_outbox_keeps_order_while_the_oldest_waits_for_its_retry(tmp_path):
    store = EventStore(tmp_path / "events.db")
    store.queue([("mqtt", "t", "first", False), ("mqtt", "t", "second", False)])
    due, _ = store.due("mqtt")
    assert [m.payload for m in due] == ["first", "second"]
    store.retry_later(due[0].id, 60.0, "refused", give_up=False)
    held, next_ts = store.due("mqtt")
    assert held == [] and next_ts > time.time() + 50  # "second" is not sent before "first"
    store.retry_later(due[0].id, 0.0, "refused", give_up=True)
    assert [m.payload for m in store.due("mqtt")[0]] == ["second"]  # a message given up frees the queue


def test_ring_records_an_event_from_its_start_and_arrival_times(tmp_path):
    import numpy as np

    ring = FrameRing(fps=8.0)  # keeps every 2nd frame (4 per second)
    frame = np.zeros((16, 16, 3), np.uint8)
    for i in range(40):
        ring.add(i, frame)
    assert ring.arrival(39) is not None and ring.arrival(100) is None
    rec = ring.record(30)  # pre-roll: 1 s = 8 frames before 30
    for i in range(40, 44):
        ring.add(i, frame)
    frames = ring.stop(rec)
    assert [i for i, _ in frames] == list(range(22, 44, 2))
    assert isinstance(rec, Recording) and not rec.active and ring.latest()[0] == 42


def test_retention_deletes_old_media_first_then_by_size_and_keeps_events(tmp_path):
    store = EventStore(tmp_path / "events.db")
    writer = MediaWriter(tmp_path / "media", store)
    ids = []
    for i in range(3):
        e = store.open_event("cam", 0, 64, 1000.0 + i, 0.9, 0.5)
        store.update_event(e.id, state="closed", end_ts=1000.0 + i)
        writer.frames(e.id, [b"x" * 1000] * 2)
        ids.append(e.id)
    writer.flush()
    now = 1000.0 + 10 * 86400
    store.update_event(ids[2], end_ts=now)  # the newest is recent
    assert apply_retention(store, writer, days=5, gigabytes=1.0, now=lambda: now) == 2
    assert not writer.folder(ids[0]).exists() and writer.folder(ids[2]).is_dir()
    assert store.get(ids[0]).media_frames == 0 and store.get(ids[2]).media_frames == 2
    assert apply_retention(store, writer, days=5, gigabytes=1e-6, now=lambda: now) == 1  # too big: deleted
    assert len(store.events()) == 3  # rows stay
    writer.close()
