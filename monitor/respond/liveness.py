"""Which monitor processes are alive — without a timer.

Every responder is one *incarnation* (a random id, new at each start). It holds a lock
that the operating system or the database releases the moment the process dies:

* PostgreSQL: a session-level advisory lock on a connection of its own — a killed
  process's connection closes and the server drops the lock;
* SQLite (one host): an exclusive ``flock`` on ``<database>.live/<incarnation>`` — the
  kernel drops it when the process dies.

A step in the store is claimed by an incarnation (``actions.owner``); another process
asks :meth:`Liveness.alive` and, if the owner is gone, takes the step over at once
instead of waiting out a grace period. Where neither mechanism applies (another
database, no ``fcntl``) :meth:`alive` answers ``None`` and callers fall back to a timer.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
import weakref
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

try:
    import fcntl
except ImportError:  # not on POSIX: callers fall back to the grace timer
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: classid of the two-key advisory locks that mark live incarnations (PostgreSQL).
_PG_NAMESPACE = 0x61677469  # "agti"
_INCARNATION = re.compile(r"[0-9a-f]{32}")


def _pg_key(incarnation: str) -> int:
    """The int4 object id of ``incarnation``'s advisory lock."""
    return int(incarnation[:8], 16) - 2**31


class Liveness:
    """This process's incarnation, and whether others are still alive."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.incarnation = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._dir: Path | None = None
        self._fd: int | None = None
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._hold_pg()
        elif dialect == "sqlite" and fcntl is not None:
            database = engine.url.database
            if database and database != ":memory:":
                self._hold_file(Path(database))
        self._finalizer = weakref.finalize(self, _release, self._conn, self._fd, self._own_file())

    # -- holding our own lock ---------------------------------------------------------
    def _hold_pg(self) -> None:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(5):  # a 32-bit key may (very rarely) collide with a live one: draw again
            taken = conn.execute(
                text("SELECT pg_try_advisory_lock(:ns, :key)"), {"ns": _PG_NAMESPACE, "key": _pg_key(self.incarnation)}
            ).scalar()
            if taken:
                self._conn = conn
                return
            self.incarnation = uuid.uuid4().hex
        conn.close()
        raise RuntimeError("could not take a liveness lock in PostgreSQL after 5 attempts")

    def _hold_file(self, database: Path) -> None:
        assert fcntl is not None
        self._dir = database.with_name(database.name + ".live")
        self._dir.mkdir(parents=True, exist_ok=True)
        # Lock a private name, then rename: a checker never sees our file unlocked.
        staging = self._dir / f".{self.incarnation}.new"
        fd = os.open(staging, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(staging, self._dir / self.incarnation)
        self._fd = fd
        for entry in self._dir.iterdir():  # files left by dead incarnations: swept
            if _INCARNATION.fullmatch(entry.name) and entry.name != self.incarnation:
                self.alive(entry.name)

    def _own_file(self) -> Path | None:
        return self._dir / self.incarnation if self._dir is not None else None

    # -- asking about others ----------------------------------------------------------
    def alive(self, incarnation: str) -> bool | None:
        """Whether ``incarnation`` still runs; ``None`` when this store cannot tell."""
        if incarnation == self.incarnation:
            return True
        if self._conn is not None:
            return self._pg_alive(incarnation)
        if self._dir is not None:
            return self._file_alive(incarnation)
        if self.engine.dialect.name == "sqlite" and fcntl is not None:
            return False  # an in-memory database lives in this process only
        return None

    def _pg_alive(self, incarnation: str) -> bool | None:
        if not _INCARNATION.fullmatch(incarnation):
            return None
        params = {"ns": _PG_NAMESPACE, "key": _pg_key(incarnation)}
        with self._lock:
            conn = self._conn
            if conn is None:
                return None
            try:
                if not conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar():
                    return True
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
                return False
            except DBAPIError as exc:  # our own lock went with the connection: we cannot tell
                log.warning(
                    "liveness check in PostgreSQL failed (%s); falling back to the grace period",
                    str(exc).splitlines()[0],
                )
                return None

    def _file_alive(self, incarnation: str) -> bool | None:
        assert fcntl is not None and self._dir is not None
        if not _INCARNATION.fullmatch(incarnation):
            return None
        path = self._dir / incarnation
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False  # never lived on this host's store, or already found dead
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return True
        try:
            path.unlink(missing_ok=True)  # dead: its file goes
        finally:
            os.close(fd)
        return False

    def close(self) -> None:
        """Give up this incarnation (the process is stopping): its steps may be taken over."""
        with self._lock:
            self._finalizer()
            self._conn = None
            self._fd = None


def _release(conn: Connection | None, fd: int | None, own_file: Path | None) -> None:
    if own_file is not None:
        own_file.unlink(missing_ok=True)
    if fd is not None:
        os.close(fd)
    if conn is not None:
        try:
            # Not back to the pool, where the session (and its advisory lock) would live
            # on: the DBAPI connection is closed, and the server drops the lock with it.
            conn.invalidate()
            conn.close()
        except DBAPIError as exc:
            log.warning("closing the liveness connection failed: %s", str(exc).splitlines()[0])
