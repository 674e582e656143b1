"""Events and outgoing alerts in SQLite: an event is committed before anyone is told about it, so a
restart or a crash loses no event that was announced; alerts to send (webhooks, MQTT) are queued in the
same transaction and survive a restart too.

The schema is versioned with ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`); a database made by a newer
damvad is refused rather than misread. WAL journal with ``synchronous=FULL``: a commit is on disk when it
returns. One connection, used under a lock (every call is short), from any thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, str] = {  # version reached -> the statements that reach it from the one before
    1: """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        camera TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'interrupted')),
        start_frame INTEGER NOT NULL,
        end_frame INTEGER NOT NULL,
        start_ts REAL NOT NULL,       -- when the event's first frame arrived (unix seconds)
        end_ts REAL,                  -- when its last frame arrived; NULL while open
        alert_ts REAL NOT NULL,       -- when it was announced
        peak_score REAL NOT NULL,
        threshold REAL NOT NULL,
        acknowledged_ts REAL,
        media_frames INTEGER NOT NULL DEFAULT 0,
        thumbnail INTEGER NOT NULL DEFAULT 0,
        updated_ts REAL NOT NULL
    );
    CREATE INDEX events_by_start ON events (start_ts);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,         -- 'mqtt' or 'webhook:<url>'
        topic TEXT,
        payload TEXT NOT NULL,
        retain INTEGER NOT NULL DEFAULT 0,
        created_ts REAL NOT NULL,
        next_ts REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_ts REAL,
        failed INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX outbox_due ON outbox (target, delivered_ts, failed, next_ts);
    """,
}


@dataclass
class Event:
    """One alert event as stored and as the API, the page, webhooks and MQTT show it."""

    id: int
    camera: str
    state: str  # open | closed | interrupted (the server stopped while it was open)
    start_frame: int
    end_frame: int
    start_ts: float
    end_ts: float | None
    alert_ts: float
    peak_score: float
    threshold: float
    acknowledged_ts: float | None
    media_frames: int
    thumbnail: bool
    updated_ts: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["thumbnail"] = f"/api/events/{self.id}/thumbnail.jpg" if self.thumbnail else None
        out["frames"] = [f"/api/events/{self.id}/frames/{i}.jpg" for i in range(self.media_frames)]
        return out


@dataclass
class Message:
    id: int
    target: str
    topic: str | None
    payload: str
    retain: bool
    attempts: int


# (target, topic, payload, retain); a callable payload is given the event as committed (its new values)
Outgoing = tuple[str, "str | Callable[[Event], str] | None", "dict | str | Callable[[Event], dict | str]", bool]


def _text(payload: dict | str) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload)


class SchemaError(RuntimeError):
    """A database this damvad cannot use (made by a newer version)."""


class EventStore:
    """The events database (``DATA/events.db``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self.interrupted = self._close_interrupted()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(f"{self.path}: schema version {version} was written by a newer damvad "
                              f"(this one reads up to {SCHEMA_VERSION}); use that version or another --data")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._lock:
                self._db.executescript(f"BEGIN; {MIGRATIONS[target]}; PRAGMA user_version = {target}; COMMIT;")

    def _close_interrupted(self) -> int:
        """Events left open by a stop or a crash: kept, marked interrupted, ended at their last update."""
        with self._lock:
            cur = self._db.execute("UPDATE events SET state = 'interrupted', end_ts = updated_ts "
                                   "WHERE state = 'open'")
            return cur.rowcount

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One transaction under the lock: all of it is committed (on disk) or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ events

    def open_event(self, camera: str, start_frame: int, end_frame: int, start_ts: float, peak: float,
                   threshold: float, messages: list[Outgoing] | None = None) -> Event:
        """Insert an open event and its alerts in one transaction (committed on return)."""
        now = time.time()
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO events (camera, state, start_frame, end_frame, start_ts, alert_ts, peak_score, "
                "threshold, updated_ts) VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?)",
                (camera, start_frame, end_frame, start_ts, now, peak, threshold, now))
            event = self._get(int(cur.lastrowid))
            self._queue(messages, event)
        return event

    def update_event(self, event_id: int, messages: list[Outgoing] | None = None,
                     **fields: Any) -> Event:
        """Change some fields of an event (and queue its alerts) in one transaction."""
        allowed = {"state", "end_frame", "end_ts", "peak_score", "acknowledged_ts", "media_frames", "thumbnail"}
        if set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        fields["updated_ts"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx():
            self._db.execute(f"UPDATE events SET {assignments} WHERE id = ?", (*fields.values(), event_id))
            event = self._get(event_id)
            self._queue(messages, event)
        return event

    def get(self, event_id: int) -> Event | None:
        with self._lock:
            try:
                return self._get(event_id)
            except KeyError:
                return None

    def _get(self, event_id: int) -> Event:
        row = self._db.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise KeyError(event_id)
        return _event(row)

    def events(self, camera: str | None = None, since: float | None = None, before_id: int | None = None,
               limit: int = 100) -> list[Event]:
        """Newest first."""
        where, args = [], []
        for clause, value in (("camera = ?", camera), ("COALESCE(end_ts, updated_ts) >= ?", since),
                              ("id < ?", before_id)):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = "SELECT * FROM events" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_event(r) for r in rows]

    def events_with_media(self) -> list[Event]:
        """Events whose media is on disk, oldest first (what retention deletes from)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM events WHERE media_frames > 0 OR thumbnail = 1 "
                                    "ORDER BY start_ts").fetchall()
        return [_event(r) for r in rows]

    # ------------------------------------------------------------------ outbox

    def _queue(self, messages: list[Outgoing] | None, event: Event) -> None:
        now = time.time()
        for target, topic, payload, retain in messages or []:
            body = _text(payload(event) if callable(payload) else payload)
            topic = topic(event) if callable(topic) else topic
            self._db.execute("INSERT INTO outbox (target, topic, payload, retain, created_ts, next_ts) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (target, topic, body, int(retain), now, now))

    def queue(self, messages: list[Outgoing]) -> None:
        """Queue alerts not tied to an event change (e.g. a camera's state)."""
        now = time.time()
        with self._tx():
            for target, topic, payload, retain in messages:
                self._db.execute("INSERT INTO outbox (target, topic, payload, retain, created_ts, next_ts) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (target, topic, _text(payload), int(retain),
                                                               now, now))

    def due(self, target: str, now: float | None = None, limit: int = 20) -> tuple[list[Message], float | None]:
        """(messages to send to ``target`` now, oldest first; when to look again, or None when none wait).

        In order: while the oldest pending message waits for its retry, the ones after it wait too, so a
        receiver never gets an event's end before its start."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute("SELECT * FROM outbox WHERE target = ? AND delivered_ts IS NULL AND failed = 0 "
                                    "ORDER BY id LIMIT ?", (target, limit)).fetchall()
        if not rows:
            return [], None
        if rows[0]["next_ts"] > now:
            return [], float(rows[0]["next_ts"])
        return [Message(r["id"], r["target"], r["topic"], r["payload"], bool(r["retain"]), r["attempts"])
                for r in rows], None

    def delivered(self, message_id: int) -> None:
        with self._tx():
            self._db.execute("UPDATE outbox SET delivered_ts = ?, attempts = attempts + 1, error = NULL "
                             "WHERE id = ?", (time.time(), message_id))

    def retry_later(self, message_id: int, delay: float, error: str, give_up: bool) -> None:
        with self._tx():
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, next_ts = ?, error = ?, failed = ? "
                             "WHERE id = ?", (time.time() + delay, error[:500], int(give_up), message_id))

    def outbox(self, target: str | None = None) -> list[dict[str, Any]]:
        """Every queued alert (for tests and the health endpoint)."""
        sql, args = "SELECT * FROM outbox", ()
        if target is not None:
            sql, args = sql + " WHERE target = ?", (target,)
        with self._lock:
            return [dict(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def pending(self) -> int:
        """Alerts still to deliver (every target)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_ts IS NULL AND failed = 0")
                       .fetchone()[0])

    def prune_outbox(self, older_than: float) -> None:
        with self._tx():
            self._db.execute("DELETE FROM outbox WHERE (delivered_ts IS NOT NULL OR failed = 1) AND created_ts < ?",
                             (older_than,))


def _event(row: sqlite3.Row) -> Event:
    data = dict(row)
    data["thumbnail"] = bool(data["thumbnail"])
    return Event(**data)
