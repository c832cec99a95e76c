"""Journaled writes: every row a handler touches leaves its before-image in `journal`.

Handlers never issue SQL themselves; they call `Writer.get/put/add/delete` (and `Writer.rows`
for a read that must see the batch's own writes). The writer keeps the current image of every
row the batch touched in memory and writes to the database in bulk:

* `get` reads a row from the database once per batch (by primary key, or from a bulk
  `prefetch`); later reads and writes of that row are served from memory.
* each write appends the row's before-image (NULL if absent) to the journal, tagged with the
  block of the event being applied. Only the **first** write of a row in each block is kept:
  undoing a block's writes newest-first ends at that first before-image, so the later ones of
  the same block are redundant and the rollback stays exact.
* `flush` writes the net difference between memory and the database: one executemany INSERT,
  UPDATE and DELETE per table, then the journal entries. It runs before `rows` reads and at
  the end of the batch, inside the batch's transaction (the checkpoint commits them together).

A reorg to fork block F undoes every journal entry with `block_number > F` (delete the row,
re-insert the oldest before-image above F) — exact, whatever the handlers did — and deletes
those entries. Entries older than the journal depth are pruned after each batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, insert, select, update

from codexfield.indexer.db import bulk_insert, bulk_select
from codexfield.indexer.models import JOURNALED, Journal

JOURNAL = Journal.__table__


def _where(table: Table, key: Mapping[str, Any]):
    return and_(*[table.c[k] == v for k, v in key.items()])


class _Spec:
    """Per-table prepared statements (built once; SQLAlchemy caches their compiled form)."""

    _all: dict[str, _Spec] = {}

    def __init__(self, table: Table):
        self.table = table
        self.pk = tuple(c.name for c in table.primary_key.columns)
        self.columns = [c.name for c in table.columns]
        self.rest = [c for c in self.columns if c not in self.pk]
        self.defaults = {
            c.name: (c.default.arg if c.default is not None and c.default.is_scalar else None) for c in table.columns
        }
        keyed = and_(*[table.c[k] == bindparam(f"k_{k}") for k in self.pk])
        self.select = select(table).where(keyed)
        self.update = update(table).where(keyed).values({c: bindparam(c) for c in self.rest}) if self.rest else None
        self.delete = delete(table).where(keyed)
        self.insert = insert(table)

    @classmethod
    def of(cls, table: Table) -> _Spec:
        spec = cls._all.get(table.name)
        if spec is None or spec.table is not table:
            spec = cls._all[table.name] = cls(table)
        return spec

    def key(self, key: Mapping[str, Any]) -> tuple:
        if len(key) != len(self.pk):
            raise ValueError(f"{self.table.name}: writes are keyed by the primary key {self.pk}, got {tuple(key)}")
        return tuple(key[k] for k in self.pk)

    def full(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """`row` with every column, defaults filled in as the INSERT does."""
        return {c: row[c] if c in row else d for c, d in self.defaults.items()}


class Writer:
    """Journaled row writes for one chain inside one open transaction."""

    def __init__(self, conn: Connection, chain_id: int):
        self.conn = conn
        self.chain_id = chain_id
        self.block = 0
        self._journal_rows: list[dict[str, Any]] = []
        self._journaled: set[tuple[str, tuple, int]] = set()  # (table, key, block) with an entry
        # Per (table name, primary key): the current image (None: absent) and the image the
        # database holds (as of the last flush); `_dirty` lists the rows where the two differ.
        self._cache: dict[tuple[str, tuple], dict[str, Any] | None] = {}
        self._db: dict[tuple[str, tuple], dict[str, Any] | None] = {}
        self._dirty: dict[tuple[str, tuple], Table] = {}

    # --- reads ---------------------------------------------------------------------------

    def get(self, table: Table, **key: Any) -> dict[str, Any] | None:
        spec = _Spec.of(table)
        ck = (table.name, spec.key(key))
        if ck in self._cache:
            row = self._cache[ck]
            return dict(row) if row is not None else None
        found = self.conn.execute(spec.select, {f"k_{k}": v for k, v in zip(spec.pk, ck[1])}).mappings().first()
        row = dict(found) if found is not None else None
        self._cache[ck] = self._db[ck] = row
        return dict(row) if row is not None else None

    def prefetch(self, table: Table, keys: Iterable[Mapping[str, Any]]) -> None:
        """Load many rows by primary key in bulk (rows not found are remembered as absent)."""
        spec = _Spec.of(table)
        wanted = list(dict.fromkeys(k for k in (spec.key(x) for x in keys) if (table.name, k) not in self._cache))
        if not wanted:
            return
        found = {tuple(r[k] for k in spec.pk): r for r in bulk_select(self.conn, table, wanted)}
        for k in wanted:
            row = found.get(k)
            self._cache[(table.name, k)] = self._db[(table.name, k)] = row

    def rows(self, stmt) -> list[Mapping[str, Any]]:
        """Run a read query that must see this batch's writes (flushes them first)."""
        self.flush()
        return self.conn.execute(stmt).mappings().all()

    # --- writes --------------------------------------------------------------------------

    def _journal(self, table: Table, spec: _Spec, k: tuple, before: Mapping[str, Any] | None) -> None:
        jk = (table.name, k, self.block)
        if jk in self._journaled:  # this row already has its before-image for this block
            return
        self._journaled.add(jk)
        self._journal_rows.append(
            {
                "chain_id": self.chain_id,
                "block_number": self.block,
                "table_name": table.name,
                "key": json.dumps(dict(zip(spec.pk, k)), sort_keys=True),
                "before": None if before is None else json.dumps(before),  # read back whole: any key order
            }
        )

    def _set(self, table: Table, k: tuple, row: dict[str, Any] | None) -> None:
        ck = (table.name, k)
        self._cache[ck] = row
        self._dirty[ck] = table

    def put(self, table: Table, key: Mapping[str, Any], **values: Any) -> dict[str, Any]:
        """Insert the row `key` with `values`, or update those columns if it exists."""
        spec = _Spec.of(table)
        before = self.get(table, **key)
        k = spec.key(key)
        self._journal(table, spec, k, before)
        row = spec.full({**key, **values}) if before is None else {**before, **values}
        self._set(table, k, row)
        return dict(row)

    def add(
        self, table: Table, key: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, **deltas: int
    ) -> dict[str, Any]:
        """Add `deltas` to numeric columns of row `key` (created with `defaults` if missing)."""
        spec = _Spec.of(table)
        before = self.get(table, **key)
        k = spec.key(key)
        self._journal(table, spec, k, before)
        if before is None:
            row = spec.full({**(defaults or {}), **key, **{c: max(0, int(v)) for c, v in deltas.items()}})
        else:
            row = {**before, **{c: max(0, int(before.get(c) or 0) + int(v)) for c, v in deltas.items()}}
        self._set(table, k, row)
        return dict(row)

    def delete(self, table: Table, **key: Any) -> None:
        spec = _Spec.of(table)
        before = self.get(table, **key)
        if before is not None:
            k = spec.key(key)
            self._journal(table, spec, k, before)
            self._set(table, k, None)

    def flush(self) -> None:
        """Write the rows changed since the last flush and the journal entries, in bulk."""
        if self._dirty:
            pg = self.conn.dialect.name == "postgresql"
            plan: dict[str, tuple[_Spec, list, list, list]] = {}
            for ck, table in self._dirty.items():
                spec = _Spec.of(table)
                ins, upd, dele = plan.setdefault(table.name, (spec, [], [], []))[1:]
                was, now = self._db.get(ck), self._cache[ck]
                keyed = {f"k_{c}": v for c, v in zip(spec.pk, ck[1])}
                if was is not None and now is None:
                    dele.append(keyed)
                elif now is not None and (was is None or pg):
                    # PostgreSQL: new and changed rows together, as full images in multi-row
                    # upserts — a few round trips per table however many rows the range touched.
                    ins.append({c: now[c] for c in spec.columns} if pg else now)
                elif was is not None and now is not None and spec.update is not None:
                    upd.append({**keyed, **{c: now[c] for c in spec.rest}})
                self._db[ck] = now
            self._dirty = {}
            for spec, ins, upd, dele in plan.values():
                if dele:
                    self.conn.execute(spec.delete, dele)
                if upd:
                    self.conn.execute(spec.update, upd)
                if ins:
                    bulk_insert(self.conn, spec.table, ins, on_conflict="update" if pg else None)
        if self._journal_rows:
            bulk_insert(self.conn, JOURNAL, self._journal_rows)
            self._journal_rows = []


class KeyProbe:
    """A stand-in `Writer` that only records which rows the handlers would touch.

    `Indexer.apply` runs a batch's handlers against it first (every read answers "absent",
    every write is dropped) and then prefetches those rows in bulk, one SELECT per table per
    `db.BULK_ROWS` keys, instead of one round trip per first read of a row. It is only a
    hint: a row the real pass needs and the probe missed is read as before."""

    def __init__(self):
        self.block = 0
        self.keys: dict[str, tuple[Table, list[dict[str, Any]]]] = {}

    def _note(self, table: Table, key: Mapping[str, Any]) -> None:
        self.keys.setdefault(table.name, (table, []))[1].append(dict(key))

    def get(self, table: Table, **key: Any) -> None:
        self._note(table, key)
        return None

    def prefetch(self, table: Table, keys: Iterable[Mapping[str, Any]]) -> None:
        for k in keys:
            self._note(table, k)

    def rows(self, stmt) -> list:
        return []

    def put(self, table: Table, key: Mapping[str, Any], **values: Any) -> dict[str, Any]:
        self._note(table, key)
        return {**key, **values}

    def add(
        self, table: Table, key: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, **deltas: int
    ) -> dict[str, Any]:
        self._note(table, key)
        return {**(defaults or {}), **key, **deltas}

    def delete(self, table: Table, **key: Any) -> None:
        self._note(table, key)

    def flush(self) -> None:
        pass


def rollback_to(conn: Connection, chain_id: int, fork_block: int) -> int:
    """Undo every journaled write of `chain_id` above `fork_block`; returns the entries undone.

    Each touched row gets back the before-image of its oldest entry above the fork (what
    replaying the entries newest-first would leave), restored in bulk."""
    rows = conn.execute(
        select(JOURNAL.c.table_name, JOURNAL.c.key, JOURNAL.c.before)
        .where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number > fork_block)
        .order_by(JOURNAL.c.id.desc())
    ).all()
    oldest: dict[tuple[str, str], str | None] = {}
    for table_name, key, before in rows:  # newest first: the last one seen per row is the oldest
        oldest[(table_name, key)] = before
    by_table: dict[str, tuple[list, list]] = {}
    for (table_name, key), before in oldest.items():
        keys, images = by_table.setdefault(table_name, ([], []))
        keys.append(json.loads(key))
        if before is not None:
            images.append(json.loads(before))
    for table_name, (keys, images) in by_table.items():
        spec = _Spec.of(JOURNALED[table_name])
        conn.execute(spec.delete, [{f"k_{c}": k[c] for c in spec.pk} for k in keys])
        if images:
            conn.execute(spec.insert, [spec.full(i) for i in images])
    conn.execute(delete(JOURNAL).where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number > fork_block))
    return len(rows)


def prune(conn: Connection, chain_id: int, below_block: int) -> None:
    """Forget undo entries of blocks below `below_block` (deeper than any reorg we handle)."""
    conn.execute(delete(JOURNAL).where(JOURNAL.c.chain_id == chain_id, JOURNAL.c.block_number < below_block))
