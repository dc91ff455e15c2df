"""Where audit lines live: append-only JSONL files (the embedded default) or SQLite.

A backend stores opaque lines (one JSON record each) and checkpoint lines, appends under a lock that
holds across processes, and can say what was appended since a given position, so each writer keeps its
hash chain in step with every other writer of the same log.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from agt._sqlite import ThreadConnections, write_transaction
from agt.errors import AgtError

FILE_PATTERN = re.compile(r"^audit-(\d{6})\.jsonl$")


class AuditStorageError(AgtError):
    pass


@dataclass(frozen=True)
class Line:
    where: str
    """A location a person can open: ``file:line`` or ``db#seq``."""
    text: str


class Backend(Protocol):
    def locked(self) -> "contextmanager[None]": ...

    def read_since(self, position: object) -> tuple[list[Line], object]: ...

    def append(self, text: str) -> object: ...

    def append_many(self, texts: list[str] | tuple[str, ...]) -> object: ...

    def sync(self) -> None: ...

    def append_checkpoint(self, text: str) -> None: ...

    def checkpoints(self) -> list[Line]: ...

    def last_checkpoint(self) -> Line | None: ...

    def close(self) -> None: ...


class JsonlBackend:
    """Files ``audit-000001.jsonl``, ``audit-000002.jsonl``, ... in one directory, rotated at
    ``max_bytes``; ``checkpoints.jsonl`` beside them; ``audit.lock`` serializes writers (flock)."""

    def __init__(self, directory: str | Path, max_bytes: int = 64 * 1024 * 1024, create: bool = True) -> None:
        self.dir = Path(directory)
        if not create and not self.dir.is_dir():
            raise AuditStorageError(f"no audit log at {self.dir}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock_fd = os.open(self.dir / "audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._thread_lock = threading.RLock()
        self._fd: int | None = None
        self._fd_index = 0
        self._next_path = ""
        """The file a rotation by any writer would create next (a plain string: no pathlib per append)."""
        self._checked: int | None = None
        """Set under the lock by :meth:`read_since` when nothing was written since our last append, and by
        :meth:`append` after its write: the offset our open file ends at, so the next append of the same
        hold of the lock writes there without looking again. Cleared when the lock is released."""

    def files(self) -> list[Path]:
        found = sorted((int(m.group(1)), p) for p in self.dir.iterdir() if (m := FILE_PATTERN.match(p.name)))
        return [p for _, p in found]

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                self._checked = None  # what we saw under the lock says nothing once it is released
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def repair_tail(self) -> int:
        """Cut a partial last line left by a writer that died mid-write; it was never acknowledged.
        Returns the number of bytes removed. Call under the lock."""
        files = self.files()
        if not files:
            return 0
        last = files[-1]
        size = last.stat().st_size
        if size == 0:
            return 0
        with open(last, "rb+") as f:
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return 0
            # Find the last newline and cut after it.
            chunk = 65536
            pos = size
            while pos > 0:
                start = max(0, pos - chunk)
                f.seek(start)
                data = f.read(pos - start)
                i = data.rfind(b"\n")
                if i >= 0:
                    keep = start + i + 1
                    break
                pos = start
            else:
                keep = 0
            f.truncate(keep)
            os.fsync(f.fileno())
            return size - keep

    def _unchanged_since(self, position: object) -> bool:
        """The cheap check writers make before every append: nobody wrote after us. While we hold the
        file we last appended to, that is one fstat of it (its size is still where we left it) and one
        stat of the next file's name (no writer, whatever its max_bytes, rotated past it)."""
        if not position:
            return False
        index, offset = position  # type: ignore[misc]
        if self._fd is not None and index == self._fd_index:
            if os.fstat(self._fd).st_size != offset or os.path.exists(self._next_path):
                return False
            self._checked = offset
            return True
        try:
            if os.stat(self.dir / f"audit-{index:06d}.jsonl").st_size != offset:
                return False
        except FileNotFoundError:
            return False
        return not (self.dir / f"audit-{index + 1:06d}.jsonl").exists()

    def read_since(self, position: object) -> tuple[list[Line], object]:
        """Lines after ``position`` (a (file index, byte offset) pair; None for the start)."""
        if self._unchanged_since(position):
            return [], position
        index, offset = position if position else (0, 0)
        out: list[Line] = []
        files = self.files()
        new_pos = (index, offset)
        for p in files:
            n = int(FILE_PATTERN.match(p.name).group(1))  # type: ignore[union-attr]
            if n < index:
                continue
            start = offset if n == index else 0
            with open(p, "rb") as f:
                f.seek(start)
                data = f.read()
            lineno = 0 if start == 0 else None
            consumed = 0
            for raw in data.split(b"\n")[:-1]:
                consumed += len(raw) + 1
                where = f"{p.name}:{lineno + 1}" if lineno is not None else f"{p.name}@{start + consumed - len(raw) - 1}"
                if lineno is not None:
                    lineno += 1
                out.append(Line(where, raw.decode("utf-8", "replace")))
            new_pos = (n, start + consumed)
        return out, new_pos

    def _open_current(self) -> int:
        if self._fd is not None and os.fstat(self._fd).st_size < self.max_bytes and not os.path.exists(self._next_path):
            return self._fd
        files = self.files()
        index = int(FILE_PATTERN.match(files[-1].name).group(1)) if files else 1  # type: ignore[union-attr]
        path = self.dir / f"audit-{index:06d}.jsonl"
        if files and path.stat().st_size >= self.max_bytes:
            index += 1
            path = self.dir / f"audit-{index:06d}.jsonl"
        if self._fd is None or self._fd_index != index:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._fd_index = index
            self._next_path = os.path.join(str(self.dir), f"audit-{index + 1:06d}.jsonl")
        return self._fd

    def append(self, text: str) -> object:
        """One write() of one whole line: a killed writer leaves at most that line half-written."""
        return self.append_many((text,))

    def append_many(self, texts: list[str] | tuple[str, ...]) -> object:
        """The lines, in the files and rotation :meth:`append` would give them one by one, with one write() per
        file: a line goes into the current file while that file is under ``max_bytes``. A killed writer leaves
        whole lines and at most one half-written last line (cut by :meth:`repair_tail`); a failed or short
        write is taken back out whole. Returns the position after the last line."""
        position: object = None
        i = 0
        while i < len(texts):
            checked, self._checked = self._checked, None
            if checked is not None and checked < self.max_bytes and self._fd is not None:
                fd, before = self._fd, checked  # read_since just saw, under this lock, that the file ends there
            else:
                fd = self._open_current()
                before = os.fstat(fd).st_size
            chunk, size = [], before
            while i < len(texts) and (not chunk or size < self.max_bytes):
                line = (texts[i] + "\n").encode("utf-8")
                chunk.append(line)
                size += len(line)
                i += 1
            data = chunk[0] if len(chunk) == 1 else b"".join(chunk)
            try:
                written = os.write(fd, data)
            except OSError:
                os.ftruncate(fd, before)
                raise
            if written != len(data):
                # Take the torn part back out (we hold the lock), so the next record starts on a clean line.
                os.ftruncate(fd, before)
                raise AuditStorageError(f"short write to the audit log ({written} of {len(data)} bytes; disk full?)")
            self._checked = before + written  # we still hold the lock: the next append of this hold starts there
            position = (self._fd_index, before + written)
        return position

    def sync(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def append_checkpoint(self, text: str) -> None:
        fd = os.open(self.dir / "checkpoints.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (text + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def checkpoints(self) -> list[Line]:
        path = self.dir / "checkpoints.jsonl"
        if not path.exists():
            return []
        lines = path.read_text("utf-8").split("\n")
        return [Line(f"checkpoints.jsonl:{i + 1}", t) for i, t in enumerate(lines) if t.strip()]

    def last_checkpoint(self) -> Line | None:
        """The newest checkpoint line, read from the end of the file (writers chain to it)."""
        path = self.dir / "checkpoints.jsonl"
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 65536))
                tail = f.read()
        except FileNotFoundError:
            return None
        lines = [t for t in tail.split(b"\n") if t.strip()]
        if not lines:
            return None
        if len(tail) == size or len(lines) > 1:
            return Line("checkpoints.jsonl:last", lines[-1].decode("utf-8", "replace"))
        return self.checkpoints()[-1]  # one line longer than the tail read: read it whole

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
        os.close(self._lock_fd)


class SqliteBackend:
    """The same lines in SQLite: ``records(seq, line)`` and ``checkpoints(id, line)``, WAL mode."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self._connections = ThreadConnections(path, synchronous=synchronous)
        self._thread_lock = threading.RLock()
        db = self._db()
        db.executescript(
            "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);"
        )

    def _db(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._thread_lock, write_transaction(self._db()):
            yield

    def repair_tail(self) -> int:
        return 0  # a transaction is all or nothing

    def read_since(self, position: object) -> tuple[list[Line], object]:
        after = int(position or 0)  # type: ignore[call-overload]
        rows = self._db().execute("SELECT rowid, line FROM records WHERE rowid > ? ORDER BY rowid", (after,)).fetchall()
        return [Line(f"{Path(self.path).name}#row{r}", t) for r, t in rows], (rows[-1][0] if rows else after)

    def append(self, text: str) -> object:
        cur = self._db().execute("INSERT INTO records (line) VALUES (?)", (text,))
        return cur.lastrowid

    def append_many(self, texts: list[str] | tuple[str, ...]) -> object:
        position: object = None
        for text in texts:
            position = self.append(text)
        return position

    def sync(self) -> None:
        pass  # durability is the synchronous pragma's business

    def append_checkpoint(self, text: str) -> None:
        self._db().execute("INSERT INTO checkpoints (line) VALUES (?)", (text,))

    def checkpoints(self) -> list[Line]:
        rows = self._db().execute("SELECT id, line FROM checkpoints ORDER BY id").fetchall()
        return [Line(f"{Path(self.path).name}#checkpoint{i}", t) for i, t in rows]

    def last_checkpoint(self) -> Line | None:
        row = self._db().execute("SELECT id, line FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        return Line(f"{Path(self.path).name}#checkpoint{row[0]}", row[1]) if row else None

    def close(self) -> None:
        self._connections.close()


def open_backend(location: str | Path, max_bytes: int = 64 * 1024 * 1024, create: bool = True) -> JsonlBackend | SqliteBackend:
    """A ``.db``/``.sqlite`` path is SQLite; anything else is a JSONL directory. Readers pass
    ``create=False``, so that a mistyped path is an error rather than an empty, "valid" log."""
    p = Path(location)
    if p.suffix in (".db", ".sqlite", ".sqlite3"):
        if not create and not p.is_file():
            raise AuditStorageError(f"no audit log at {p}")
        return SqliteBackend(p)
    return JsonlBackend(p, max_bytes=max_bytes, create=create)
