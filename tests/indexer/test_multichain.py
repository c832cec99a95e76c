"""Two indexers (one per chain) on one catalog database, the documented multi-chain setup:
each follows its chain and refreshes the rankings after every batch, concurrently. No refresh
may fail (the table is never emptied and refilled; on PostgreSQL refreshes are serialised by an
advisory lock), and the result equals one quiet refresh of the final catalog."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from codexfield.indexer import models as m
from codexfield.indexer import ranking

from synth import Feed, minted, rated, usage

CHAINS = (31337, 31338)
ROUNDS = 25


def _follow(engine, chain_id: int, errors: list, barrier: threading.Barrier) -> None:
    feed = Feed(engine, chain_id=chain_id)
    barrier.wait()
    try:
        for i in range(1, ROUNDS + 1):
            feed.block_of([minted(i), usage(i, i, calls=i), rated(i, 1000 + i, 1 + i % 5)])
            ranking.refresh(engine)
    except Exception as exc:  # noqa: BLE001 - the test reports every failure
        errors.append((chain_id, repr(exc)[:300]))


def test_two_followers_refresh_concurrently__no_failure__scores_exact(engine):
    errors: list = []
    barrier = threading.Barrier(len(CHAINS))
    threads = [threading.Thread(target=_follow, args=(engine, c, errors, barrier)) for c in CHAINS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    S = m.CapsuleScore.__table__
    with engine.connect() as conn:
        for c in CHAINS:  # both chains fully indexed and ranked
            assert conn.execute(select(func.count()).select_from(S).where(S.c.chain_id == c)).scalar_one() == ROUNDS
        before = {r["capsule_id"]: dict(r) for r in conn.execute(select(S)).mappings()}
    ranking.refresh(engine)  # a quiet refresh changes nothing: the concurrent ones converged
    with engine.connect() as conn:
        after = {r["capsule_id"]: dict(r) for r in conn.execute(select(S)).mappings()}
    assert after.keys() == before.keys()
    for k in after:
        for col, v in after[k].items():
            assert not ranking._differs(before[k][col], v), (k, col)
