"""One file being downloaded: its ``.part`` file, the ranges still to fetch, and the SHA-256
of what has arrived.

A file fetched over one connection grows at its end: its sidecar ``<path>.part.json`` holds
the SHA-256 and size, and the ``.part`` file's length is how far it got; it is hashed as its
bytes are written, from the buffer the socket filled. A large file fetched over several
connections at once is *sparse*: the ``.part`` file is extended to its full size, each range
is written where it belongs (``pwrite``), the sidecar also lists the byte ranges that have
arrived (``done``), and a hasher thread follows the contiguous prefix, so the digest is
ready moments after the last byte. A later run resumes from either form; anything
inconsistent is discarded and fetched again. The digest is always of the whole file, so a
corrupted range fails it like any other corruption.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.localfiles import HASH_CHUNK, local_path
from app.cli.plan import RemoteFile

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

# Bytes received between two rewrites of a sparse file's sidecar (what a crash can lose).
SIDECAR_EVERY = 16 * 1024 * 1024

Ranges = list[tuple[int, int]]  # sorted, disjoint [start, end) byte ranges


def partial_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def discard(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def gaps(done: Ranges, size: int) -> Ranges:
    out: Ranges = []
    at = 0
    for a, b in done:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < size:
        out.append((at, size))
    return out


def split(ranges: Ranges, pieces: int, min_size: int) -> Ranges:
    """Cut ``ranges`` into about ``pieces`` parts of equal size, none under ``min_size``."""
    total = sum(b - a for a, b in ranges)
    target = max(min_size, -(-total // max(1, pieces)))
    out: Ranges = []
    for a, b in ranges:
        n = max(1, min(-(-(b - a) // target), (b - a) // min_size))
        step = -(-(b - a) // n)
        out.extend((s, min(s + step, b)) for s in range(a, b, step))
    return out


def resumable_ranges(part: Path, sidecar: Path, f: RemoteFile) -> Ranges:
    """The byte ranges of ``part`` that hold ``f``'s bytes; none (and nothing left on disk)
    when the sidecar is missing, unreadable or names other content."""
    try:
        meta = json.loads(sidecar.read_text("utf-8"))
        length = part.stat().st_size
    except (OSError, ValueError):
        discard(part, sidecar)
        return []
    ok = isinstance(meta, dict) and meta.get("sha256") == f.sha256 and meta.get("size") == f.size
    done = meta.get("done") if ok else None
    if ok and done is None and length <= f.size:
        return [(0, length)] if length else []
    if ok and length == f.size and _valid_ranges(done, f.size):
        return merged([(int(a), int(b)) for a, b in done or []])
    discard(part, sidecar)
    return []


def _valid_ranges(value: Any, size: int) -> bool:
    return isinstance(value, list) and all(
        isinstance(r, list)
        and len(r) == 2
        and all(type(x) is int for x in r)
        and 0 <= r[0] < r[1] <= size
        for r in value
    )


@dataclass
class Segment:
    """A byte range one connection fetches: ``pos`` is the next byte it needs."""

    start: int
    end: int
    pos: int

    @property
    def remaining(self) -> int:
        return self.end - self.pos


class FileDownload:
    """The state of one file while its segments are fetched (possibly by several threads)."""

    def __init__(self, f: RemoteFile, root: Path, *, connections: int, min_split: int) -> None:
        self.file = f
        self.dest = local_path(root, f.path)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.part, self.sidecar = partial_paths(self.dest)
        done = resumable_ranges(self.part, self.sidecar, f)
        self.resumed_from = sum(b - a for a, b in done)
        self._done = done
        self.renewals = 0  # tokens renewed for this file; a third rejection is not expiry
        self.failed = False  # a segment failed for good: the others stop
        self._lock = threading.Condition()
        self._unsaved = 0
        self._hashed = 0
        self._closing = False
        todo = gaps(done, f.size)
        self.growing = connections == 1 and (not done or done == [(0, self.resumed_from)])
        self.fd = os.open(self.part, os.O_RDWR | os.O_CREAT, 0o644)
        self.digest: Hash = hashlib.sha256()
        if self.growing:
            self.segments = [Segment(self.resumed_from, f.size, self.resumed_from)]
            os.ftruncate(self.fd, self.resumed_from)
        else:
            pieces = split(todo, connections, min_split) if connections > 1 else todo
            self.segments = [Segment(a, b, a) for a, b in pieces]
            os.ftruncate(self.fd, f.size)
        self._save()
        self._hasher: threading.Thread | None = None
        if self.growing:
            # What an earlier run left is hashed now; new bytes as they are written.
            self._hashed = self._hash_from_disk(
                0, self.resumed_from, memoryview(bytearray(HASH_CHUNK))
            )
        else:
            self._hasher = self._start_hasher()

    # -- the bytes -------------------------------------------------------------------------

    def write(self, seg: Segment, data: memoryview) -> None:
        """Put ``data`` at ``seg.pos`` and account for it."""
        at = seg.pos
        while data:
            n = os.pwrite(self.fd, data, at)
            if self.growing:
                # In order, from the buffer the socket filled: no second copy, and the
                # bytes are still in the CPU's cache.
                self.digest.update(data[:n])
            data = data[n:]
            at += n
        with self._lock:
            self._unsaved += at - seg.pos
            seg.pos = at
            self._lock.notify_all()
            if not self.growing and self._unsaved >= SIDECAR_EVERY:
                self._save()

    def restart(self) -> None:
        """The server sent the whole file to a one-connection resume: start it over."""
        seg = self.segments[0]
        seg.start = seg.pos = 0
        self._done = []
        os.ftruncate(self.fd, 0)
        self.digest = hashlib.sha256()

    def received(self) -> int:
        with self._lock:
            return self._done_bytes()

    def _done_bytes(self) -> int:
        return sum(b - a for a, b in self._ranges())

    def _ranges(self) -> Ranges:
        return merged(self._done + [(s.start, s.pos) for s in self.segments])

    # -- the digest ----------------------------------------------------------------------

    def _start_hasher(self) -> threading.Thread:
        t = threading.Thread(target=self._follow, name=f"hash-{self.file.path}", daemon=True)
        t.start()
        return t

    def _follow(self) -> None:
        """A sparse file's digest: hash the contiguous prefix as the gaps fill, on a thread
        of its own, reading the bytes back from the page cache (which still holds them).
        Ranges arrive out of order, so the socket's buffers cannot be hashed as they come."""
        buf = memoryview(bytearray(HASH_CHUNK))
        while self._hashed < self.file.size:
            with self._lock:
                while not self._closing and (end := self._prefix_end()) <= self._hashed:
                    self._lock.wait()
                if self._closing:
                    return
            self._hashed = self._hash_from_disk(self._hashed, end, buf)

    def _prefix_end(self) -> int:
        end = 0
        for a, b in self._ranges():
            if a > end:
                break
            end = b
        return end

    def _hash_from_disk(self, start: int, end: int, buf: memoryview) -> int:
        while start < end:
            n = os.preadv(self.fd, [buf[: min(len(buf), end - start)]], start)
            if n <= 0:
                break  # truncated under us: the digest will not match
            self.digest.update(buf[:n])
            start += n
        return start

    def hexdigest(self) -> str:
        """The SHA-256 of the whole file, once every segment is done."""
        if self._hasher is not None:
            self._hasher.join()
        return self.digest.hexdigest()

    # -- the files on disk -----------------------------------------------------------------

    def _save(self) -> None:
        meta: dict[str, Any] = {"sha256": self.file.sha256, "size": self.file.size}
        meta["path"] = self.file.path
        if not self.growing:
            meta["done"] = [list(r) for r in self._ranges()]
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(meta), "utf-8")
        os.replace(tmp, self.sidecar)
        self._unsaved = 0

    def suspend(self) -> None:
        """Leave the partial file for a later run (stopped, or retries exhausted)."""
        self._close_hasher()
        with self._lock:
            self._save()
        os.close(self.fd)

    def abandon(self) -> None:
        """Nothing here can be trusted (integrity failure): delete it."""
        self._close_hasher()
        os.close(self.fd)
        discard(self.part, self.sidecar)

    def complete(self) -> None:
        """Every byte arrived and the digest matched: put the file in place, durably."""
        os.fsync(self.fd)
        os.close(self.fd)
        os.replace(self.part, self.dest)
        discard(self.sidecar)

    def _close_hasher(self) -> None:
        if self._hasher is None:
            return
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._hasher.join()
