"""A bounded on-disk spool of messages that must not be lost (MQTT QoS 1), kept until the receiver acknowledges.

The spool is one append-only file of JSON lines in the station's state folder, readable only by its owner (0600)::

    {"i": 17, "t": "edgecnn/line1/cam/frame/decision", "p": "{...}", "r": false}   a message put
    {"a": 17}                                                                       message 17 acknowledged

Lines are written with one ``write()`` on a file opened ``O_APPEND`` (messages taken together share it), so a
killed process leaves at most a torn last line, which the next start skips. An acknowledgement leaves memory at
once and reaches the file with the next write or sync: a crash in between sends that message again (a duplicate,
as QoS 1 allows), never loses one. ``<spool>.lock`` (flock) keeps a second process off the same spool. The file is fsynced a few times a second by a thread of its own (what
a killed process wrote is in the kernel already; the fsync covers a power cut), so a slow disk never delays a
message. On start the file is read back: every message put and not acknowledged
is pending again, in order, and is sent again (a duplicate only when its acknowledgement was lost, as QoS 1 allows).
When the acknowledged lines outweigh the pending ones the file is rewritten with the pending ones only (temporary
file, fsync, rename). The pending bytes are bounded by ``max_bytes``: :meth:`Spool.put` refuses a message beyond it,
and the caller counts it. A disk that is full refuses the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

_COMPACT_MIN = 1 << 20  # never rewrite a file smaller than 1 MiB


class Message(NamedTuple):
    id: int
    topic: str
    payload: str
    retain: bool


class Spool:
    """Messages put and not yet acknowledged, on disk and in order.

    Args:
        path: The spool file (created 0600; its folder is created).
        max_bytes: The most bytes of pending messages it holds.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, tuple[Message, int]] = OrderedDict()  # id -> (message, line bytes)
        self._live = 0  # bytes of the pending messages' lines
        self._file_bytes = 0
        self._next = 1
        self._fd: int | None = None
        self._dirty = False
        self._acks: list[bytes] = []  # ack lines not yet written: they go out with the next write or sync
        self.skipped = 0  # unreadable (torn) lines found at load
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_lock()
        self._load()
        self._open()
        if self._file_bytes != self._live:  # acks or a torn last line (the next append must start on a new line)
            self.compact(force=True)

    def _take_lock(self) -> int:
        """An exclusive lock on ``<spool>.lock`` for this object's life: two processes appending to (and
        compacting) one spool would lose messages."""
        import fcntl

        from edgecnn.errors import EdgeCNNError

        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise EdgeCNNError(f"spool {self.path} is in use by another process (another station with the same "
                               "state folder?); give each station its own state_dir") from None
        return fd

    # ------------------------------------------------------------------ reading back
    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            data = fh.read()
        for line in data.splitlines(keepends=True):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("torn line")
                rec = json.loads(line)
                if "a" in rec:
                    entry = self._pending.pop(int(rec["a"]), None)
                    if entry is not None:
                        self._live -= entry[1]
                    continue
                msg = Message(int(rec["i"]), str(rec["t"]), str(rec["p"]), bool(rec.get("r", False)))
            except (ValueError, KeyError, TypeError):
                self.skipped += 1
                continue
            self._pending[msg.id] = (msg, len(line))
            self._live += len(line)
            self._next = max(self._next, msg.id + 1)
        self._file_bytes = len(data)

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(self._fd, 0o600)

    # ------------------------------------------------------------------ writing
    def put(self, topic: str, payload: str, retain: bool = False) -> int | None:
        """Append a message; its id, or None when the spool is full (``max_bytes``). A disk that refuses the write
        raises OSError, so the caller can name it."""
        return self.put_many([(topic, payload, retain)])[0]

    def put_many(self, messages: list[tuple[str, str, bool]]) -> list[int | None]:
        """Append messages with one write; each one's id, or None for those the spool has no room for."""
        with self._lock:
            ids: list[int | None] = []
            lines: list[bytes] = []
            added: list[tuple[Message, int]] = []
            live = self._live
            for topic, payload, retain in messages:
                msg_id = self._next + len(added)
                line = json.dumps({"i": msg_id, "t": topic, "p": payload, "r": retain}, ensure_ascii=False,
                                  separators=(",", ":")).encode("utf-8") + b"\n"
                if live + len(line) > self.max_bytes:
                    ids.append(None)
                    continue
                live += len(line)
                lines.append(line)
                added.append((Message(msg_id, topic, payload, retain), len(line)))
                ids.append(msg_id)
            if not lines:
                return ids
            self._append(b"".join(self._acks + lines))
            self._acks.clear()
            self._next += len(added)
            for msg, size in added:
                self._pending[msg.id] = (msg, size)
            self._live = live
            return ids

    def ack(self, msg_id: int) -> None:
        """Mark a message acknowledged: it leaves the spool now; its ack line is written with the next write or
        sync (a crash before that sends it again: a duplicate, as QoS 1 allows)."""
        with self._lock:
            entry = self._pending.pop(msg_id, None)
            if entry is None:
                return
            self._live -= entry[1]
            self._acks.append(b'{"a":%d}\n' % msg_id)

    def _append(self, line: bytes) -> None:
        assert self._fd is not None, "spool closed"
        written = os.write(self._fd, line)
        if written != len(line):  # a short write (disk full): never leave half a line behind a good one
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._file_bytes)
            raise OSError(28, "No space left on device (short write)", str(self.path))
        self._file_bytes += written
        self._dirty = True

    def sync(self) -> None:
        """Write the pending ack lines and fsync, without holding up :meth:`put` and :meth:`ack` during the fsync
        (it runs on a duplicate of the file descriptor, outside the lock)."""
        with self._lock:
            if self._acks and self._fd is not None:
                try:
                    self._append(b"".join(self._acks))
                except OSError:
                    pass  # the acks stay in memory; at worst those messages are sent again
                else:
                    self._acks.clear()
            if not self._dirty or self._fd is None:
                return
            fd = os.dup(self._fd)
            self._dirty = False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def compact(self, force: bool = False) -> bool:
        """Rewrite the file with the pending messages only, when acknowledged lines dominate (or ``force``)."""
        with self._lock:
            if not force and (self._file_bytes < _COMPACT_MIN or self._file_bytes < 2 * self._live):
                return False
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    for msg, _ in self._pending.values():
                        fh.write(json.dumps({"i": msg.id, "t": msg.topic, "p": msg.payload, "r": msg.retain},
                                            ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            if self._fd is not None:
                os.close(self._fd)
            self._open()
            self._file_bytes = self._live
            self._dirty = False
            self._acks.clear()  # the rewritten file holds the pending messages only
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sync()
        with contextlib.suppress(OSError):
            self.compact()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    # ------------------------------------------------------------------ what is pending
    def get(self, msg_id: int) -> Message | None:
        with self._lock:
            entry = self._pending.get(msg_id)
            return entry[0] if entry else None

    def ids(self) -> list[int]:
        """Ids of the pending messages, oldest first."""
        with self._lock:
            return list(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._live

    @property
    def file_bytes(self) -> int:
        return self._file_bytes
