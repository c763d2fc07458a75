"""SQLite stores: WAL mode with synchronous=FULL, so a committed effect survives kill -9
and a power cut (every COMMIT fsyncs the WAL).

Services touch their store only from the event loop and never await inside a
transaction, so each `with tx(db):` block is atomic with respect to every other
handler of the same process.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def open_db(path: Path, schema: str, *, synced: bool = True) -> sqlite3.Connection:
    """The store at `path`; `synced=False` (a mutant) never fsyncs (synchronous=OFF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synced else 'OFF'}")
    db.executescript(schema)
    return db


@contextlib.contextmanager
def tx(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One durable transaction: BEGIN IMMEDIATE ... COMMIT (fsynced), or ROLLBACK."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
