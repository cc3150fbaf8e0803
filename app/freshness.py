"""How long a per-process cache may answer after the database changed: the cache epoch.

The hot routes (``/resolve``, the Hub's model info and tree, the manifest, token issue)
keep what they read on every request — the API key's owner, a model's releases,
components, stages and files, a caller's grants — in per-process caches
(:class:`EpochCache`). An entry answers only while the process's epoch is the one it was
loaded under, and the epoch moves whenever something those caches hold has changed:

- **In this process**, at once: the commit of a write to a watched table (:data:`WATCHED`,
  seen by the engine hook :func:`watch_engine`) moves it before ``commit()`` returns.
- **On any replica, or by any other writer** (the CLI, an operator's SQL): triggers on the
  same tables add a row to ``cache_invalidations`` in the writing transaction, so it
  becomes visible exactly when the change does. Each process looks at that table's
  ``count`` and ``sum(id)`` at most every :attr:`Freshness.interval` seconds (0.5 by
  default), on the request path, and moves its epoch when they changed. A change committed
  anywhere is therefore refused everywhere within ``interval`` plus one round trip —
  under 1 s. ``count`` and ``sum`` rather than ``max(id)``: ids are handed out before
  commit, so a transaction that took id 5 may commit after another's id 6 has been seen;
  it still changes the count.

Entries also expire after :data:`MAX_AGE` seconds whatever the epoch, and a failed poll
moves the epoch (the next request reads the database, which then answers or fails as it
would have without the cache). What is cached is facts, never decisions: expiry dates,
schedules and agreement ends are compared with the request's clock every time, so a lift
or an expiry that happens by the clock needs no invalidation.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, event, text

K = TypeVar("K")
V = TypeVar("V")

# Table -> the columns whose UPDATE invalidates (None: any change). The same rule as the
# triggers of migration 2026_12_03_1830-cache_invalidations.py. Columns left out change on
# hot paths and are not cached facts (an API key's last use, a stage's transition stamp).
WATCHED: dict[str, tuple[str, ...] | None] = {
    "api_keys": ("user_id", "key_hash", "expires_at", "revoked_at"),
    "users": ("email", "role", "disabled_at", "partner_id"),
    "partners": ("disabled_at",),
    "partner_agreements": None,
    "grants": None,
    "models": None,
    "releases": None,
    "components": None,
    "stages": ("component_id", "tier", "at"),
    "release_files": None,
    "release_signatures": None,
    "hub_views": None,
}

MAX_AGE = 60.0  # seconds an entry may answer at most, whatever the epoch
PRUNE_EVERY = 600.0  # seconds between one process's prunes of the invalidation log
_WRITE = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


def touches_watched(statement: str) -> bool:
    """Whether a SQL statement writes a watched table (and, for an UPDATE, a watched
    column). Statements SQLAlchemy compiles name the table right after the verb."""
    m = _WRITE.match(statement)
    if m is None:
        return False
    table = m.group(1).lower()
    if table not in WATCHED:
        return False
    columns = WATCHED[table]
    if columns is None or statement.lstrip()[:6].upper() != "UPDATE":
        return True
    assignments = re.split(r"\sWHERE\s", statement, maxsplit=1, flags=re.IGNORECASE)[0]
    return any(re.search(rf"\b{c}\s*=", assignments) for c in columns)


class Freshness:
    """One process's cache epoch (see the module docstring)."""

    def __init__(
        self,
        poll: Callable[[], tuple[int, int]] | None,
        *,
        interval: float = 0.5,
        prune: Callable[[], None] | None = None,
        close: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._poll = poll
        self._prune = prune
        self._close = close
        self.interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()  # one look at the database at a time
        self._bump = threading.Lock()
        self._epoch = 0
        self._seen: tuple[int, int] | None = None
        self._checked = float("-inf")
        self._pruned = monotonic()

    def close(self) -> None:
        """Release the connection the looks use (at the app's shutdown)."""
        if self._close is not None:
            self._close()

    def changed(self) -> None:
        """Something cached changed (a commit in this process): entries answer no more."""
        with self._bump:
            self._epoch += 1

    def epoch(self) -> int:
        """The epoch to load and look up entries under, after looking at the database if
        the last look is older than :attr:`interval`. One thread looks; the others go on
        with the epoch it had, which is at most ``interval`` old."""
        due = self._poll is not None and self._monotonic() - self._checked >= self.interval
        if due and self._lock.acquire(blocking=False):
            try:
                self._look()
            finally:
                self._lock.release()
        return self._epoch

    def _look(self) -> None:
        assert self._poll is not None
        now = self._monotonic()
        try:
            if self._prune is not None and now - self._pruned >= PRUNE_EVERY:
                self._pruned = now
                self._prune()
            seen = self._poll()
        except Exception:  # a failed look must not fail the request
            # Unknown is changed: the next request reads the database itself.
            self.changed()
            self._seen = None
            return
        finally:
            self._checked = self._monotonic()
        if seen != self._seen:
            if self._seen is not None:
                self.changed()
            self._seen = seen


def database_freshness(engine: Engine, *, interval: float) -> Freshness:
    """A :class:`Freshness` polling ``engine``'s ``cache_invalidations`` on a connection of
    its own (never the request's transaction), moved at once by this process's commits."""
    url = engine.url
    sqlite = url.get_backend_name() == "sqlite"
    # Its own small engine: on SQLite the app's begins every transaction IMMEDIATE (a write
    # lock), which a read of the log must not wait for.
    from app.observability.probe import make_probe_engine

    reader = make_probe_engine(url)
    poll_sql = text("SELECT count(*), coalesce(sum(id), 0) FROM cache_invalidations")
    cutoff = (
        "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')" if sqlite else "now() - interval '1 hour'"
    )
    prune_sql = text(f"DELETE FROM cache_invalidations WHERE at < {cutoff}")  # noqa: S608

    def poll() -> tuple[int, int]:
        with reader.connect() as conn:
            row = conn.execute(poll_sql).one()
            return int(row[0]), int(row[1])

    def prune() -> None:
        with reader.begin() as conn:
            conn.execute(prune_sql)

    fresh = Freshness(poll, interval=interval, prune=prune, close=reader.dispose)
    watch_engine(engine, fresh)
    return fresh


# Engine -> the Freshness objects its commits move (tests build many apps on one engine).
_WATCHERS: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[Freshness]] = (
    weakref.WeakKeyDictionary()
)


def watch_engine(engine: Engine, fresh: Freshness) -> None:
    """Move ``fresh``'s epoch whenever a transaction (or savepoint: tests commit those) that
    wrote a watched table commits on ``engine``."""
    watchers = _WATCHERS.get(engine)
    if watchers is not None:
        watchers.add(fresh)
        return
    watchers = weakref.WeakSet([fresh])
    _WATCHERS[engine] = watchers

    @event.listens_for(engine, "before_cursor_execute")
    def _note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if touches_watched(statement):
            conn.info["wg_watched_write"] = True

    def _committed(conn: Any, *_: Any) -> None:
        if conn.info.pop("wg_watched_write", False):
            for f in list(watchers):
                f.changed()

    def _rolled_back(conn: Any, *_: Any) -> None:
        conn.info.pop("wg_watched_write", None)

    event.listen(engine, "commit", _committed)
    event.listen(engine, "release_savepoint", _committed)
    event.listen(engine, "rollback", _rolled_back)


class EpochCache(Generic[K, V]):
    """A bounded least-recently-used map whose entries answer only under the epoch they
    were loaded in, and for at most :data:`MAX_AGE` seconds."""

    def __init__(
        self,
        fresh: Freshness,
        max_entries: int,
        *,
        max_age: float = MAX_AGE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fresh = fresh
        self._max = max_entries
        self._max_age = max_age
        self._monotonic = monotonic
        self._entries: OrderedDict[K, tuple[int, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, epoch: int) -> V | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[0] != epoch or self._monotonic() - hit[1] > self._max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[2]

    def put(self, key: K, value: V, epoch: int) -> None:
        """Store ``value`` loaded under ``epoch`` (read before loading): if the epoch moved
        meanwhile, the entry is already stale and will not answer."""
        with self._lock:
            self._entries[key] = (epoch, self._monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def load(self, key: K, loader: Callable[[], V]) -> V:
        """The entry for ``key``, loading (and keeping) it on a miss."""
        epoch = self.fresh.epoch()
        hit = self.get(key, epoch)
        if hit is not None:
            return hit
        value = loader()
        self.put(key, value, epoch)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
