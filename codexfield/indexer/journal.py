"""Journaled writes: every row a handler touches leaves its before-image in `journal`.

Handlers never issue SQL themselves; they call `Writer.get/put/add/delete`. Each write first
reads the row's current image (or notes that it did not exist) and appends it to `journal`
tagged with the block of the event being applied, all inside the batch's transaction. A reorg
to fork block F undoes every journal entry with `block_number > F` newest-first (delete the row,
re-insert its before-image) — exact, whatever the handlers did — and deletes those entries.
Entries older than the journal depth are pruned after each batch.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import Connection, Table, and_, delete, insert, select, update

from codexfield.indexer.models import JOURNALED, Journal

JOURNAL = Journal.__table__


def _where(table: Table, key: Mapping[str, Any]):
    return and_(*[table.c[k] == v for k, v in key.items()])


class Writer:
    """Journaled row writes for one chain inside one open transaction."""

    def __init__(self, conn: Connection, chain_id: int):
        self.conn = conn
        self.chain_id = chain_id
        self.block = 0
        self._buffer: list[dict[str, Any]] = []
        # Current image of every row read or written in this batch (None: known absent), so a
        # row touched by many events is read from the database once.
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    @staticmethod
    def _ck(table: Table, key: Mapping[str, Any]) -> tuple[str, str]:
        return table.name, json.dumps(dict(key), sort_keys=True)

    def get(self, table: Table, **key: Any) -> dict[str, Any] | None:
        ck = self._ck(table, key)
        if ck in self._cache:
            row = self._cache[ck]
            return dict(row) if row is not None else None
        found = self.conn.execute(select(table).where(_where(table, key))).mappings().first()
        self._cache[ck] = dict(found) if found is not None else None
        return dict(found) if found is not None else None

    @staticmethod
    def _full(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
        """`row` with every column, defaults filled in as the INSERT does."""
        out = {}
        for c in table.columns:
            if c.name in row:
                out[c.name] = row[c.name]
            elif c.default is not None and c.default.is_scalar:
                out[c.name] = c.default.arg
            else:
                out[c.name] = None
        return out

    def _journal(self, table: Table, key: Mapping[str, Any], before: Mapping[str, Any] | None) -> None:
        self._buffer.append({
            "chain_id": self.chain_id,
            "block_number": self.block,
            "table_name": table.name,
            "key": json.dumps(dict(key), sort_keys=True),
            "before": None if before is None else json.dumps(dict(before), sort_keys=True),
        })
        if len(self._buffer) >= 500:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.conn.execute(insert(JOURNAL), self._buffer)
            self._buffer = []

    def put(self, table: Table, key: Mapping[str, Any], **values: Any) -> dict[str, Any]:
        """Insert the row `key` with `values`, or update those columns if it exists."""
        before = self.get(table, **key)
        self._journal(table, key, before)
        if before is None:
            row = self._full(table, {**key, **values})
            self.conn.execute(insert(table).values(**row))
        else:
            row = {**before, **values}
            if values:
                self.conn.execute(update(table).where(_where(table, key)).values(**values))
        self._cache[self._ck(table, key)] = row
        return dict(row)

    def add(self, table: Table, key: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
            **deltas: int) -> dict[str, Any]:
        """Add `deltas` to numeric columns of row `key` (created with `defaults` if missing)."""
        before = self.get(table, **key)
        self._journal(table, key, before)
        if before is None:
            row = self._full(table, {**(defaults or {}), **key, **{k: max(0, int(v)) for k, v in deltas.items()}})
            self.conn.execute(insert(table).values(**row))
        else:
            values = {k: max(0, int(before.get(k) or 0) + int(v)) for k, v in deltas.items()}
            self.conn.execute(update(table).where(_where(table, key)).values(**values))
            row = {**before, **values}
        self._cache[self._ck(table, key)] = row
        return dict(row)

    def delete(self, table: Table, **key: Any) -> None:
        before = self.get(table, **key)
        if before is not None:
            self._journal(table, key, before)
            self.conn.execute(delete(table).where(_where(table, key)))
            self._cache[self._ck(table, key)] = None


def rollback_to(conn: Connection, chain_id: int, fork_block: int) -> int:
    """Undo every journaled write of `chain_id` above `fork_block`; returns the entries undone."""
    rows = conn.execute(
        select(JOURNAL).where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number > fork_block)
        .order_by(JOURNAL.c.id.desc())
    ).mappings().all()
    for r in rows:
        table = JOURNALED[r["table_name"]]
        key = json.loads(r["key"])
        conn.execute(delete(table).where(_where(table, key)))
        if r["before"] is not None:
            conn.execute(insert(table).values(**json.loads(r["before"])))
    conn.execute(delete(JOURNAL).where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number > fork_block))
    return len(rows)


def prune(conn: Connection, chain_id: int, below_block: int) -> None:
    """Forget undo entries of blocks below `below_block` (deeper than any reorg we handle)."""
    conn.execute(delete(JOURNAL).where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number < below_block))
