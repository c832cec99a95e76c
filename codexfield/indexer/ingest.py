"""The ingestion loop: logs in block ranges, decoded, applied in order, checkpointed atomically.

One `Indexer` follows one chain (many indexers may share one catalog database):

1. `head = eth_blockNumber`, `target = head - confirmations`.
2. **Reorg check.** The hash stored for the checkpoint block is compared with the chain; on a
   mismatch the stored blocks are walked back (newest first) to the highest one whose hash
   still matches: the fork point F. Every journaled write above F is undone
   (`journal.rollback_to`), the blocks above F are forgotten and the checkpoint moves to F —
   all in one transaction. Indexing then resumes from F + 1.
3. **Fetch** `eth_getLogs(checkpoint + 1 .. min(checkpoint + batch, target))` for every address
   of the address book, and the header of each block that has logs plus the range's last
   block. A log whose blockHash differs from its block's header means the chain moved while
   we read: the batch is dropped and retried.
4. **Apply** the logs sorted by (block, log index) through the handlers, then write the block
   hashes, the new checkpoint and the manifest queue entries — in ONE database transaction.
   An exception anywhere (a handler, the database, a crash) rolls the whole batch back: a
   restart resumes from the last committed checkpoint, with no duplicate and no gap.

Journal entries older than `journal_depth` blocks below the checkpoint are pruned with each
batch; a reorg deeper than that raises `DeepReorg` (re-index from scratch).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, delete, insert, select, update

from codexfield.indexer import journal
from codexfield.indexer.abi import DecodedEvent, EventDecoder, _hex
from codexfield.indexer.db import bulk_insert
from codexfield.indexer.handlers import HANDLERS, Context
from codexfield.indexer.models import SEARCH_ATTRIBUTES, Block, Capsule, CapsuleScore, Chain, Manifest, MeterConfig

log = logging.getLogger("codexfield.indexer")

CHAINS = Chain.__table__
MC = MeterConfig.__table__
BLOCKS = Block.__table__
MANIFESTS = Manifest.__table__
SCORES = CapsuleScore.__table__
CAPSULES = Capsule.__table__


class DeepReorg(RuntimeError):
    """The chain reorganised below the oldest block the journal can undo."""


class ChainMoved(RuntimeError):
    """The chain changed while a batch was being read; the batch is retried."""


class Source(Protocol):
    """What the indexer needs from a node."""

    def block_number(self) -> int: ...

    def header(self, number: int) -> dict[str, Any]: ...  # {"hash", "parentHash", "timestamp"}

    def logs(self, start: int, end: int, addresses: list[str]) -> list[Mapping[str, Any]]: ...


class Web3Source:
    """A `Source` over a web3.py `Web3` (HTTP RPC URL, or ape's `chain.provider.web3`)."""

    def __init__(self, w3):
        self.w3 = w3

    @classmethod
    def from_url(cls, url: str) -> Web3Source:
        from web3 import HTTPProvider, Web3

        return cls(Web3(HTTPProvider(url, request_kwargs={"timeout": 30})))

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def header(self, number: int) -> dict[str, Any]:
        b = self.w3.eth.get_block(number)
        return {"hash": _hex(b["hash"]), "parentHash": _hex(b["parentHash"]), "timestamp": int(b["timestamp"])}

    def logs(self, start: int, end: int, addresses: list[str]) -> list[Mapping[str, Any]]:
        if not addresses:
            return []
        return list(self.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": addresses}))

    def call_uint(self, address: str, abi: list[dict], fn: str) -> int | None:
        try:
            return int(getattr(self.w3.eth.contract(address=address, abi=abi).functions, fn)().call())
        except Exception:  # noqa: BLE001 - optional configuration read
            return None


@dataclass
class StepResult:
    applied: int = 0
    start: int | None = None
    end: int | None = None
    reorg_to: int | None = None
    caught_up: bool = False


class Indexer:
    """Follows one chain's CodexField contracts into the catalog."""

    def __init__(
        self,
        engine: Engine,
        source: Source,
        chain_id: int,
        addresses: Mapping[str, str],
        *,
        confirmations: int = 0,
        batch_size: int = 1000,
        start_block: int = 0,
        journal_depth: int = 10_000,
        decoder: EventDecoder | None = None,
        epoch_length: int | None = None,
        genesis: int = 0,
    ):
        self.engine = engine
        self.source = source
        self.chain_id = int(chain_id)
        from eth_utils import to_checksum_address

        # Checksummed, whatever the address book says: entity ids embed them, and the API
        # canonicalises the ids it is given the same way.
        self.addresses = {n: to_checksum_address(a) for n, a in addresses.items()}
        self.confirmations = confirmations
        self.batch_size = batch_size
        self.start_block = start_block
        self.journal_depth = journal_depth
        self.decoder = decoder or EventDecoder(self.addresses)
        self._epochs_given = epoch_length is not None
        self.epoch_length = epoch_length
        self.genesis = genesis
        self.reorgs_seen = 0  # reorgs rolled back by this process (run_cycle refreshes rankings after one)
        self._ensure_chain()
        self._load_meter_config()

    def _load_meter_config(self) -> None:
        """Epochs from the meter's `MeterConfigured` event as indexed (events only: never a chain read)."""
        if self._epochs_given:
            return
        with self.engine.connect() as conn:
            row = conn.execute(select(MC.c.epoch_length, MC.c.genesis).where(MC.c.chain_id == self.chain_id)).first()
        self.epoch_length, self.genesis = (int(row[0]), int(row[1])) if row else (None, 0)

    def decoder_abi(self, name: str) -> list[dict]:
        from codexfield.indexer.abi import load_abis

        return load_abis([name]).get(name, [])

    # --- bookkeeping ---------------------------------------------------------------------

    def _ensure_chain(self) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(CHAINS).where(CHAINS.c.chain_id == self.chain_id)).first()
            if row is None:
                conn.execute(
                    insert(CHAINS).values(
                        chain_id=self.chain_id,
                        start_block=self.start_block,
                        indexed_block=self.start_block - 1,
                        head=0,
                        contracts=json.dumps(self.addresses, sort_keys=True),
                        updated_at=time.time(),
                        reorgs=0,
                    )
                )
            else:
                conn.execute(
                    update(CHAINS)
                    .where(CHAINS.c.chain_id == self.chain_id)
                    .values(contracts=json.dumps(self.addresses, sort_keys=True))
                )

    def progress(self) -> tuple[int, int]:
        """(indexed block, last seen head) of this chain, from the catalog."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CHAINS.c.indexed_block, CHAINS.c.head).where(CHAINS.c.chain_id == self.chain_id)
            ).one()
        return int(row[0]), int(row[1])

    def checkpoint(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(CHAINS.c.indexed_block).where(CHAINS.c.chain_id == self.chain_id)).scalar_one()
            )

    # --- reorgs --------------------------------------------------------------------------

    def _canonical_hash(self, number: int, head: int) -> str | None:
        """The chain's hash of block `number`; None when the chain (now shorter) has no such block."""
        if number > head:
            return None
        try:
            return self.source.header(number)["hash"]
        except Exception as exc:  # noqa: BLE001 - web3's BlockNotFound: the block vanished meanwhile
            if type(exc).__name__ == "BlockNotFound":
                return None
            raise

    def _fork_point(self, checkpoint: int, head: int) -> int | None:
        """None if the stored checkpoint block is still canonical, else the highest matching block.

        A reorg to a *shorter* chain (head below the checkpoint) is a reorg like any other: the
        stored blocks above the head do not match."""
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(BLOCKS.c.number, BLOCKS.c.hash)
                .where(BLOCKS.c.chain_id == self.chain_id)
                .where(BLOCKS.c.number <= checkpoint)
                .order_by(BLOCKS.c.number.desc())
            ).all()
        if not stored:
            return None
        if stored[0].number == checkpoint and self._canonical_hash(checkpoint, head) == stored[0].hash:
            return None
        for number, h in stored:
            if self._canonical_hash(number, head) == h:
                return number
        oldest = stored[-1].number
        if checkpoint - self.journal_depth > self.start_block:  # the journal was pruned: cannot undo all
            raise DeepReorg(
                f"chain {self.chain_id} reorganised below block {oldest}, the oldest block the journal "
                "can undo; drop the catalog (or this chain's rows) and re-index"
            )
        return self.start_block - 1

    def rollback(self, fork: int) -> int:
        with self.engine.begin() as conn:
            undone = journal.rollback_to(conn, self.chain_id, fork)
            conn.execute(delete(BLOCKS).where(BLOCKS.c.chain_id == self.chain_id, BLOCKS.c.number > fork))
            # Score rows of capsules the reorg removed (a capsule minted again at the same id on
            # the new branch gets a fresh row with its own search attributes).
            conn.execute(
                delete(SCORES).where(~select(CAPSULES.c.id).where(CAPSULES.c.id == SCORES.c.capsule_id).exists())
            )
            # Manifests (keyed by CID, shared by chains) that no capsule on any chain names any more.
            conn.execute(
                delete(MANIFESTS).where(~select(CAPSULES.c.id).where(CAPSULES.c.cid == MANIFESTS.c.cid).exists())
            )
            conn.execute(
                update(CHAINS)
                .where(CHAINS.c.chain_id == self.chain_id)
                .values(indexed_block=fork, reorgs=CHAINS.c.reorgs + 1, updated_at=time.time())
            )
        self._load_meter_config()
        log.warning("chain %s: reorg, rolled back to block %s (%s writes undone)", self.chain_id, fork, undone)
        return undone

    # --- the loop ------------------------------------------------------------------------

    def step(self) -> StepResult:
        head = self.source.block_number()
        target = head - self.confirmations
        checkpoint = self.checkpoint()
        fork = self._fork_point(checkpoint, head)
        if fork is not None:
            self.rollback(fork)
            self.reorgs_seen += 1
            return StepResult(reorg_to=fork)
        if checkpoint >= target:
            with self.engine.begin() as conn:
                conn.execute(
                    update(CHAINS).where(CHAINS.c.chain_id == self.chain_id).values(head=head, updated_at=time.time())
                )
            return StepResult(caught_up=True)
        start, end = checkpoint + 1, min(checkpoint + self.batch_size, target)
        raw = self.source.logs(start, end, self.decoder.addresses)
        events = sorted(
            (e for e in (self.decoder.decode(r) for r in raw if not r.get("removed")) if e is not None),
            key=lambda e: (e.block_number, e.log_index),
        )
        headers = {}
        for n in sorted({e.block_number for e in events} | {end}):
            try:
                headers[n] = self.source.header(n)
            except Exception as exc:  # noqa: BLE001
                if type(exc).__name__ == "BlockNotFound":  # the chain got shorter while we read
                    raise ChainMoved(f"block {n} vanished while reading logs; retrying the batch") from None
                raise
        for e in events:
            if headers[e.block_number]["hash"] != e.block_hash:
                raise ChainMoved(f"block {e.block_number} changed while reading logs; retrying the batch")
        self.apply(events, headers, start, end, head)
        return StepResult(applied=len(events), start=start, end=end, caught_up=end >= target)

    def apply(
        self, events: Iterable[DecodedEvent], headers: Mapping[int, Mapping[str, Any]], start: int, end: int, head: int
    ) -> None:
        """Apply one batch and move the checkpoint to `end`, atomically."""
        ctx = Context(
            chain_id=self.chain_id, addresses=self.addresses, epoch_length=self.epoch_length, genesis=self.genesis
        )
        with self.engine.begin() as conn:
            current = conn.execute(
                select(CHAINS.c.indexed_block).where(CHAINS.c.chain_id == self.chain_id).with_for_update()
            ).scalar_one()
            if current != start - 1:
                raise RuntimeError(
                    f"chain {self.chain_id}: checkpoint moved to {current} under us (another indexer "
                    "process on the same chain?); stop the other one"
                )
            w = journal.Writer(conn, self.chain_id)
            events = list(events)
            if conn.dialect.name != "sqlite":  # a round trip per read costs on a server, not on a file
                self._prefetch(w, events, headers)
            for e in events:
                handler = HANDLERS.get((e.contract, e.name))
                if handler is None:
                    continue
                w.block = e.block_number
                ctx.timestamp = int(headers[e.block_number]["timestamp"])
                handler(w, ctx, e.args)
            w.flush()
            # Nothing above the checkpoint is stored (a rollback forgets those blocks): clear the
            # range anyway, as one ranged delete, in case a row was left by hand or an old version.
            conn.execute(delete(BLOCKS).where(BLOCKS.c.chain_id == self.chain_id, BLOCKS.c.number >= start))
            bulk_insert(
                conn,
                BLOCKS,
                [
                    {
                        "chain_id": self.chain_id,
                        "number": n,
                        "hash": h["hash"],
                        "parent_hash": h["parentHash"],
                        "timestamp": int(h["timestamp"]),
                    }
                    for n, h in headers.items()
                ],
            )
            self._enqueue_manifests(conn, ctx.new_manifests)
            self._default_scores(conn, w, ctx.new_capsules)
            conn.execute(
                update(CHAINS)
                .where(CHAINS.c.chain_id == self.chain_id)
                .values(indexed_block=end, head=head, updated_at=time.time())
            )
            floor = end - self.journal_depth
            if floor > self.start_block:
                journal.prune(conn, self.chain_id, floor)
                keep = conn.execute(
                    select(BLOCKS.c.number)
                    .where(BLOCKS.c.chain_id == self.chain_id, BLOCKS.c.number < floor)
                    .order_by(BLOCKS.c.number.desc())
                    .limit(1)
                ).scalar()
                if keep is not None:  # keep one block below the floor as the walk-back anchor
                    conn.execute(delete(BLOCKS).where(BLOCKS.c.chain_id == self.chain_id, BLOCKS.c.number < keep))
        if not self._epochs_given:  # a `MeterConfigured` in this batch sets the epochs
            self.epoch_length, self.genesis = ctx.epoch_length, ctx.genesis

    def _prefetch(
        self, w: journal.Writer, events: list[DecodedEvent], headers: Mapping[int, Mapping[str, Any]]
    ) -> None:
        """Dry-run the handlers on a `journal.KeyProbe`, then load the rows they name in bulk."""
        probe = journal.KeyProbe()
        ctx = Context(
            chain_id=self.chain_id, addresses=self.addresses, epoch_length=self.epoch_length, genesis=self.genesis
        )
        for e in events:
            handler = HANDLERS.get((e.contract, e.name))
            if handler is None:
                continue
            probe.block = e.block_number
            ctx.timestamp = int(headers[e.block_number]["timestamp"])
            try:
                handler(probe, ctx, e.args)
            except Exception:  # noqa: BLE001 - a hint only; the real pass raises what matters
                continue
        for table, keys in probe.keys.values():
            w.prefetch(table, keys)

    @staticmethod
    def _enqueue_manifests(conn, items: list[tuple[str, str]]) -> None:
        """Queue the range's new CIDs (the first uri seen for each); a CID already known (the same
        content minted again, or on another chain) keeps its row: `ON CONFLICT DO NOTHING`."""
        first = dict(reversed(items))
        rows = [
            {
                "cid": cid,
                "uri": uri,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": 0.0,
                "name": "",
                "description": "",
                "tags": "",
                "body": "",
            }
            for cid, uri in first.items()
        ]
        bulk_insert(conn, MANIFESTS, rows, on_conflict="nothing")

    @staticmethod
    def _default_scores(conn, w: journal.Writer, capsule_ids: list[str]) -> None:
        """Neutral score rows for new capsules, so search (an inner join) sees them before the next
        `ranking.refresh`; rows of capsules later rolled back are dropped by the join and the refresh.

        The search attributes come from the capsule rows the range wrote (the writer holds them);
        an existing score row (a concurrent refresh wrote it) is kept: `ON CONFLICT DO NOTHING`."""
        rows = []
        for c in dict.fromkeys(capsule_ids):
            cap = w.get(CAPSULES, id=c)
            if cap is not None:
                rows.append(
                    {
                        "capsule_id": c,
                        "moderation": "ok",
                        "score": 0.0,
                        "success_rate": 0.0,
                        "calls": 0,
                        "rating_count": 0,
                        "rating_bayes": 0.0,
                        "audits_valid": 0,
                        "scope_names": ",",
                        **{a: cap[a] for a in SEARCH_ATTRIBUTES},
                    }
                )
        bulk_insert(conn, SCORES, rows, on_conflict="nothing")

    def sync(self, max_steps: int | None = None) -> int:
        """Step until caught up with `head - confirmations`; returns the number of events applied."""
        applied = steps = 0
        while max_steps is None or steps < max_steps:
            steps += 1
            try:
                r = self.step()
            except ChainMoved as exc:
                log.info("%s", exc)
                continue
            applied += r.applied
            if r.caught_up:
                break
        return applied


def indexer_for_book(engine: Engine, source: Web3Source, book, **kw) -> Indexer:
    """An Indexer for every contract an address book names (DESIGN §4.6)."""
    from codexfield.indexer.abi import INDEXED_CONTRACTS

    addresses = {n: a for n, a in book.contracts.items() if n in INDEXED_CONTRACTS}
    kw.setdefault("start_block", int(getattr(book, "block", 0) or 0))
    return Indexer(engine, source, book.chain_id, addresses, **kw)
