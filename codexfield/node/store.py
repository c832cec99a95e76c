"""The node's durable state: last accepted voucher per channel (credential, payer; the node is
this node), what the meter has settled,
and (through `KeeperState`) the intent log of its ingest transactions.

A voucher is written here *before* the node serves on it, so a restart loses nothing: the
vouchers accepted but not yet settled are re-queued and ingested.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from codexfield.keepers.base import KeeperState
from codexfield.sdk.metering import Voucher, voucher_from_json
from codexfield.sqlite import wal

Counters = tuple[int, int, int, int]


class _KeptConnection(sqlite3.Connection):
    """The store's one connection: `close()` (the base class closes after every use) only ends
    a transaction left open; the connection is reused (saves the open + PRAGMAs on every call)."""

    def close(self) -> None:
        if self.in_transaction:
            self.rollback()

    def really_close(self) -> None:
        super().close()


class NodeStore(KeeperState):
    """Every read and write goes through one kept connection, under the store's lock (the base
    class holds it around each use); commits stay `synchronous=FULL` (WAL)."""

    def __init__(self, path: str | Path):
        self._db: _KeptConnection | None = None
        super().__init__(path)
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS channels_v2 (credential_id TEXT PRIMARY KEY, accepted TEXT NOT NULL,"
                " settled TEXT NOT NULL, voucher TEXT NOT NULL, signature TEXT NOT NULL, status TEXT NOT NULL,"
                " note TEXT, calls_served INTEGER NOT NULL DEFAULT 0, updated REAL)"
            )
            have = {r[1] for r in db.execute("PRAGMA table_info(channels_v2)")}
            if "input_sha" not in have:  # recovery: the input a replayed voucher must repeat
                db.execute("ALTER TABLE channels_v2 ADD COLUMN input_sha TEXT")

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is None:
                db = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30, check_same_thread=False, factory=_KeptConnection
                )
                wal(db, synchronous="FULL")
                self._db = db
            return self._db

    def close(self) -> None:
        """Close the kept connection (a later use opens a new one)."""
        with self._lock:
            if self._db is not None:
                self._db.really_close()
                self._db = None

    def previous(self, credential_id: int, payer: str) -> Counters:
        """The channel's last accepted cumulative counters (zeros for a new channel)."""
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                "SELECT accepted FROM channels_v2 WHERE credential_id=?", (_key(credential_id, payer),)
            ).fetchone()
        return tuple(int(x) for x in json.loads(row[0])) if row else (0, 0, 0, 0)  # type: ignore[return-value]

    def accept(
        self,
        voucher: Voucher,
        signature: bytes,
        expected_previous: Counters,
        input_sha: str = "",
        settled: Counters = (0, 0, 0, 0),
    ) -> bool:
        """Record `voucher` as the channel's latest, iff the channel is still at
        `expected_previous` (compare-and-set: two racing requests cannot both be accepted)."""
        return self.accept_many([(voucher, signature, expected_previous, input_sha, settled)])[0]

    def accept_many(self, items: list[tuple[Voucher, bytes, Counters, str, Counters]]) -> list[bool]:
        """`accept` for several channels in ONE transaction (the gateway's group commit);
        `settled` seeds a channel the store has not seen (the meter's `settled(...)`)."""
        out = []
        with self._tx() as db:
            for voucher, signature, expected_previous, input_sha, seed in items:
                key = _key(voucher.credential_id, voucher.payer)
                row = db.execute("SELECT accepted, settled FROM channels_v2 WHERE credential_id=?", (key,)).fetchone()
                prev = tuple(int(x) for x in json.loads(row[0])) if row else tuple(seed)
                if prev != tuple(expected_previous):
                    out.append(False)
                    continue
                settled = row[1] if row else json.dumps([str(c) for c in seed])
                db.execute(
                    "INSERT INTO channels_v2 (credential_id, accepted, settled, voucher, signature, status, calls_served,"
                    " updated, input_sha) VALUES (?, ?, ?, ?, ?, 'pending', 1, ?, ?) ON CONFLICT(credential_id) DO"
                    " UPDATE SET accepted=excluded.accepted, voucher=excluded.voucher, signature=excluded.signature,"
                    " status='pending', note=NULL, calls_served=calls_served + 1, updated=excluded.updated,"
                    " input_sha=excluded.input_sha",
                    (
                        key,
                        json.dumps([str(c) for c in voucher.counters()]),
                        settled,
                        json.dumps({k: str(v) if isinstance(v, int) else v for k, v in voucher.as_message().items()}),
                        "0x" + signature.hex(),
                        time.time(),
                        input_sha,
                    ),
                )
                out.append(True)
        return out

    def last(self, credential_id: int, payer: str) -> tuple[Counters, Counters, Voucher | None, bytes, str] | None:
        """(accepted, settled, last voucher, its signature, its input digest) of a channel, or None."""
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                "SELECT accepted, settled, voucher, signature, input_sha FROM channels_v2 WHERE credential_id=?",
                (_key(credential_id, payer),),
            ).fetchone()
        if row is None:
            return None
        return (
            tuple(int(x) for x in json.loads(row[0])),
            tuple(int(x) for x in json.loads(row[1])),  # type: ignore
            voucher_from_json(json.loads(row[2])),
            bytes.fromhex(row[3][2:]),
            row[4] or "",
        )

    def pending(self) -> list[tuple[Voucher, bytes]]:
        """Latest accepted voucher of every channel whose counters exceed what was settled."""
        with self._lock, closing(self._connect()) as db:
            rows = db.execute("SELECT voucher, signature FROM channels_v2 WHERE status='pending'").fetchall()
        return [(voucher_from_json(json.loads(v)), bytes.fromhex(s[2:])) for v, s in rows]

    def settled(self, credential_id: int, payer: str) -> Counters:
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                "SELECT settled FROM channels_v2 WHERE credential_id=?", (_key(credential_id, payer),)
            ).fetchone()
        return tuple(int(x) for x in json.loads(row[0])) if row else (0, 0, 0, 0)  # type: ignore[return-value]

    def mark_settled(
        self, credential_id: int, payer: str, settled: Counters, ingested: Counters, note: str | None = None
    ) -> str:
        """Record the meter's settled counters after ingesting a voucher with `ingested` counters.

        'rejected' when the meter did not take that voucher (`note` says why); otherwise
        'settled' when nothing newer was accepted meanwhile, else still 'pending'."""
        return self.mark_settled_many([(credential_id, payer, settled, ingested, note)])[0]

    def mark_settled_many(self, items: list[tuple[int, str, Counters, Counters, str | None]]) -> list[str]:
        """`mark_settled` for a whole ingested batch in ONE transaction."""
        out = []
        with self._tx() as db:
            for credential_id, payer, settled, ingested, note in items:
                key = _key(credential_id, payer)
                row = db.execute("SELECT accepted FROM channels_v2 WHERE credential_id=?", (key,)).fetchone()
                if row is None:
                    out.append("unknown")
                    continue
                accepted = tuple(int(x) for x in json.loads(row[0]))
                if not all(s >= i for s, i in zip(settled, ingested)):
                    status = "rejected"
                elif all(s >= a for s, a in zip(settled, accepted)):
                    status = "settled"
                else:
                    status = "pending"
                db.execute(
                    "UPDATE channels_v2 SET settled=?, status=?, note=?, updated=? WHERE credential_id=?",
                    (
                        json.dumps([str(c) for c in settled]),
                        status,
                        note if status == "rejected" else None,
                        time.time(),
                        key,
                    ),
                )
                out.append(status)
        return out

    def channel(self, credential_id: int, payer: str) -> dict | None:
        with self._lock, closing(self._connect()) as db:
            row = db.execute(
                "SELECT accepted, settled, status, note, calls_served FROM channels_v2 WHERE credential_id=?",
                (_key(credential_id, payer),),
            ).fetchone()
        if row is None:
            return None
        return {
            "accepted": json.loads(row[0]),
            "settled": json.loads(row[1]),
            "status": row[2],
            "note": row[3],
            "calls_served": row[4],
        }

    def stats(self) -> dict[str, int]:
        with self._lock, closing(self._connect()) as db:
            rows = db.execute("SELECT status, COUNT(*), SUM(calls_served) FROM channels_v2 GROUP BY status").fetchall()
        out = {f"channels_{s}": n for s, n, _ in rows}
        out["calls_served"] = sum(c or 0 for _, _, c in rows)
        return out


def _key(credential_id: int, payer: str) -> str:
    """The row key of a channel: credential and payer (the node is this node)."""
    return f"{int(credential_id)}:{str(payer).lower()}"
