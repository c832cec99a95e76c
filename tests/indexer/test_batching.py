"""Batched writes: a range of many blocks applied in one transaction (rows buffered in memory
and written in bulk, one journal entry per row and block) equals applying the blocks one by
one, and the journal still rolls back exactly to every block inside the range."""

from __future__ import annotations

from sqlalchemy import func, select
from test_handlers import _dump

from codexfield.indexer import journal
from codexfield.indexer import models as m

from synth import (
    CHAIN,
    Feed,
    block_hash,
    capsule_id,
    claimed,
    credited,
    decoded_events,
    minted,
    propagated,
    rated,
    state,
    usage,
)

BLOCKS = [
    # the same rows written many times inside one block
    [
        minted(1),
        minted(2, parents=[(1, 5000)]),
        credited(2, 100),
        credited(2, 50),
        usage(1, 2),
        usage(1, 2),
        usage(1, 2),
    ],
    # propagation reads lineage written earlier in the same range
    [propagated(2, 150, 75), usage(1, 2), rated(2, 1, 4), rated(2, 1, 5), state(2, 2)],
    # mint and propagate in the same block: the read must see the block's own edges
    [
        minted(3, parents=[(2, 1000)]),
        minted(4, parents=[(3, 5000), (1, 2500)]),
        credited(4, 10),
        propagated(4, 10, 7),
        claimed(2, 75),
        usage(1, 4),
        state(2, 1),
    ],
]


def _header(n: int) -> dict:
    return {
        "hash": block_hash(n),
        "parentHash": "0x" + "00" * 32,
        "timestamp": n * 10,
    }


def test_one_range_of_many_blocks__equals_block_by_block__and_rolls_back_to_each_block(engine):
    f = Feed(engine)
    snapshots = {0: _dump(engine)}
    for events in BLOCKS:
        n = f.block_of(events)
        snapshots[n] = _dump(engine)
    assert snapshots[3] != snapshots[2] != snapshots[1] != snapshots[0]

    f.idx.rollback(0)
    assert _dump(engine) == snapshots[0]
    decoded = [e for n, events in enumerate(BLOCKS, start=1) for e in decoded_events(n, events)]
    f.idx.apply(decoded, {n: _header(n) for n in range(1, len(BLOCKS) + 1)}, 1, len(BLOCKS), len(BLOCKS))
    assert _dump(engine) == snapshots[3]
    vault = _dump(engine)["royalty_vaults"]
    assert any(("capsule_id", capsule_id(3)) in r for r in vault)  # capsule 4's propagation reached parent 3

    for fork in (2, 1, 0):
        with engine.begin() as conn:
            assert journal.rollback_to(conn, CHAIN, fork) > 0
        assert _dump(engine) == snapshots[fork]


def test_journal__one_entry_per_row_and_block(engine):
    f = Feed(engine)
    f.block_of([minted(1), usage(1, 1), usage(1, 1), usage(1, 1)])
    with engine.connect() as conn:
        per_row = conn.execute(
            select(m.Journal.table_name, m.Journal.key, func.count()).group_by(
                m.Journal.table_name, m.Journal.key, m.Journal.block_number
            )
        ).all()
    assert per_row and all(n == 1 for _, _, n in per_row)
    assert {t for t, _, _ in per_row} >= {"capsules", "usage_channels", "capsule_usage"}
    usage_row = _dump(engine)["capsule_usage"][0]
    assert ("calls", "15") in usage_row  # three deltas of 5 calls summed in memory
