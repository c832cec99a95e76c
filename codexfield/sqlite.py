"""The one way every local SQLite file of CodexField is put in WAL mode.

The consumer's ledger (`codexfield.sdk.metering`), the node's store (`codexfield.node.store`),
the keepers' state (`codexfield.keepers.base`) and the SQLite catalog (`codexfield.indexer.db`)
each open their file with `wal(db, synchronous=...)`.

Why not a bare `PRAGMA journal_mode=WAL`: while another connection opens or converts the same
file, SQLite answers the journal-mode change with "database is locked" at once, without waiting
on the connection's busy timeout. Several consumers (threads or processes) that open one
ledger file together then lost one of them at start-up (`test_metering_sdk.py::
test_ledger__concurrent_signers_never_sign_the_same_counters`, 10 of 300 runs of 4 threads).
WAL is a property of the file: once one connection set it, the others only read it.
"""

from __future__ import annotations

import sqlite3
import time

#: How long a connection waits for another one converting the file, in all (seconds).
WAL_WAIT_S = 10.0


def wal(db: sqlite3.Connection, *, synchronous: str = "FULL") -> None:
    """Put the file of `db` in WAL mode (retrying while another connection holds it) and set
    `synchronous` (`FULL`: every commit is on disk when it returns; `NORMAL`: at checkpoints)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    deadline = time.monotonic() + WAL_WAIT_S
    pause = 0.001
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(
                    f"{exc}: another process holds the file for more than {WAL_WAIT_S:g} s"
                ) from None
            time.sleep(pause)
            pause = min(0.05, pause * 2)
    db.execute(f"PRAGMA synchronous={synchronous}")
