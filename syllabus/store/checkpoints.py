"""Checkpoints of the embedded store's write-ahead log, off the path of commits.

SQLite copies its log back into the database file (a checkpoint) inside whichever commit finds the log longer
than `wal_autocheckpoint` pages, and that checkpoint is where the file is synced: one commit in a few dozen (a job's
claim, its outcome or its submission, whichever it was) took milliseconds longer, the tail of the round trip. So
each process that opens the store runs a PASSIVE checkpoint every CHECKPOINT_INTERVAL on a thread and connection
of its own: it waits for no reader or writer, and no commit carries it. The automatic checkpoint stays as a
backstop, at BACKSTOP_PAGES, for a log that grows faster than the thread copies it back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Seconds between checkpoints: every 0.1 s copied the same hot pages again and again (about a tenth more CPU per
# round trip), every 0.5 s did not.
CHECKPOINT_INTERVAL = 0.5
# Pages (of 4 KiB) past which a commit checkpoints by itself after all (SQLite's default is 1,000).
BACKSTOP_PAGES = 10000


class Checkpointer:
    def __init__(self, path: Path, sync: str, interval: float = CHECKPOINT_INTERVAL) -> None:
        self._path = path
        # The checkpoint syncs the database file as the store's own commits would (PRAGMA synchronous).
        self._sync = sync
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="syllabus-store-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Blocks until the thread is done (at most one checkpoint's time): call it off the event loop."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning("checkpoints of %s are left to the commits: %s", self._path, exc)
            return
        try:
            conn.execute(f"PRAGMA synchronous = {self._sync.upper()}")
            # It reads no table: a checkpoint copies pages through a buffer of its own, not the page cache.
            conn.execute("PRAGMA cache_size = -64")
            while not self._stopping.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    # A busy or full database: the next turn tries again, and the backstop still holds.
                    log.debug("checkpoint of %s skipped: %s", self._path, exc)
        except sqlite3.Error as exc:
            log.warning("checkpoints of %s are left to the commits: %s", self._path, exc)
        finally:
            conn.close()
