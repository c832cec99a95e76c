"""The indexer against a real chain (anvil): rebuild equals the contracts' views, reorgs roll
back and re-index, a crash mid-batch leaves nothing half-written, restarts neither duplicate
nor skip."""

from __future__ import annotations

import os

import pytest
from eth_utils import keccak
from sqlalchemy import func, select

from codexfield.did import did_for
from codexfield.indexer import handlers
from codexfield.indexer import models as m

STD = keccak(text="ISO-42001")


def _caip(chain, system, token_id):
    return f"eip155:{chain.chain_id}/erc721:{system.registry.address}/{token_id}"


def _build_history(system, admin, creator, licensor, consumer, stranger, chain):
    r = system.registry
    a = r.mint(1, os.urandom(32), [], [], "", sender=creator).return_value
    b = r.mint(2, os.urandom(32), [(a, 1500)], [], "", sender=creator).return_value
    c = r.mint(3, os.urandom(32), [(a, 500), (b, 2500)], [], "https://example.org/c.json", sender=creator).return_value
    v2 = r.publish_version(b, os.urandom(32), "", sender=creator).return_value
    r.transferFrom(creator, licensor, c, sender=creator)
    r.set_state(a, 2, b"\x00" * 32, sender=creator)
    r.set_state(c, 4, b"\x01" * 32, sender=admin)  # flagged by the arbiter (admin)
    system.identity.changeOwner(creator, stranger, sender=creator)
    for cred, holder, stars in ((11, consumer, 4), (12, stranger, 2), (13, consumer, 5)):
        system.lm.set_terms_capsule(cred, b, sender=admin)
        system.lm.set_credential(cred, cred, holder, 1, sender=admin)
        system.reputation.rate(b, cred, stars, b"\x09" * 32, sender=holder)
    system.reputation.rate(b, 11, 1, b"\x0a" * 32, sender=consumer)  # an update
    aid = system.reputation.attest(v2, STD, True, b"\x07" * 32, 0, sender=admin).return_value
    aid2 = system.reputation.attest(b, STD, False, b"\x08" * 32, 0, sender=admin).return_value
    system.reputation.revoke_attestation(aid, sender=admin)
    return [a, b, c, v2], [aid, aid2]


def test_rebuild__from_events__equals_contract_views(
    system, make_indexer, engine, chain, admin, creator, licensor, consumer, stranger
):
    ids, attestations = _build_history(system, admin, creator, licensor, consumer, stranger, chain)
    idx = make_indexer(batch_size=7)
    assert idx.sync() > 0
    r = system.registry
    with engine.connect() as conn:
        for i in ids:
            row = conn.execute(select(m.Capsule).where(m.Capsule.id == _caip(chain, system, i))).mappings().one()
            on = r.capsule(i)
            assert (row["kind"], row["content_hash"], row["creator"], row["version"]) == (
                on.kind,
                "0x" + on.content_hash.hex(),
                on.creator,
                on.version,
            )
            assert row["previous_id"] == (_caip(chain, system, on.previous_id) if on.previous_id else None)
            assert row["owner"] == r.ownerOf(i) and row["state"] == r.state(i)
            assert row["created_at"] == on.created_at
            root = row["root_id"]
            latest = conn.execute(select(m.Capsule.latest_id).where(m.Capsule.id == root)).scalar_one()
            assert latest == _caip(chain, system, r.latest_version(i))
            edges = conn.execute(
                select(m.LineageEdge.parent_id, m.LineageEdge.share_bps)
                .where(m.LineageEdge.child_id == row["id"])
                .order_by(m.LineageEdge.position)
            ).all()
            assert [tuple(e) for e in edges] == [
                (_caip(chain, system, p.capsule_id), p.share_bps) for p in r.parents(i)
            ]
        for i in ids:
            total, count = system.reputation.rating(i)
            got = conn.execute(
                select(func.coalesce(func.sum(m.Rating.stars), 0), func.count()).where(
                    m.Rating.capsule_id == _caip(chain, system, i)
                )
            ).one()
            assert (got[0], got[1]) == (total, count)
        for aid in attestations:
            on = system.reputation.attestation(aid)
            row = conn.execute(select(m.Attestation).where(m.Attestation.attestation_id == aid)).mappings().one()
            assert (
                row["capsule_id"],
                row["auditor"],
                row["standard"],
                row["passed"],
                row["revoked"],
                row["valid_until"],
            ) == (
                _caip(chain, system, on.capsule_id),
                on.auditor,
                "0x" + on.standard.hex(),
                on.passed,
                on.revoked,
                on.valid_until,
            )
        did = (
            conn.execute(select(m.Did).where(m.Did.id == f"eip155:{chain.chain_id}:{creator.address}")).mappings().one()
        )
        assert did["owner"] == system.identity.identityOwner(creator) and did["did"] == did_for(
            creator.address, chain.chain_id
        )
        assert conn.execute(select(func.count()).select_from(m.Manifest)).scalar_one() == 4


def test_reorg__snapshot_restore_different_txs__rolls_back_and_reindexes(
    system, make_indexer, engine, chain, creator, licensor
):
    r = system.registry
    base = r.mint(1, os.urandom(32), [], [], "", sender=creator).return_value
    idx = make_indexer()
    idx.sync()
    snap = chain.snapshot()
    lost_hash = os.urandom(32)
    lost = r.mint(2, lost_hash, [(base, 100)], [], "", sender=creator).return_value
    r.set_state(base, 3, b"\x00" * 32, sender=creator)
    idx.sync()
    with engine.connect() as conn:
        assert conn.execute(select(m.Capsule.state).where(m.Capsule.id == _caip(chain, system, base))).scalar_one() == 3
        assert conn.execute(select(m.Capsule).where(m.Capsule.content_hash == "0x" + lost_hash.hex())).first()
    old_head = chain.blocks.head.number
    chain.restore(snap)
    kept_hash = os.urandom(32)
    kept = r.mint(4, kept_hash, [], [], "", sender=licensor).return_value
    chain.mine(3)  # the new branch is longer than the old one
    assert kept == lost and chain.blocks.head.number >= old_head
    r1 = idx.step()
    assert r1.reorg_to is not None and r1.reorg_to < old_head
    idx.sync()
    with engine.connect() as conn:
        row = conn.execute(select(m.Capsule).where(m.Capsule.id == _caip(chain, system, kept))).mappings().one()
        assert row["content_hash"] == "0x" + kept_hash.hex() and row["kind"] == 4 and row["owner"] == licensor.address
        assert conn.execute(select(m.Capsule.state).where(m.Capsule.id == _caip(chain, system, base))).scalar_one() == 1
        assert not conn.execute(select(m.LineageEdge).where(m.LineageEdge.child_id == row["id"])).first()
        assert conn.execute(select(m.Chain.reorgs)).scalar_one() == 1
        stored = conn.execute(select(m.Block.number, m.Block.hash)).all()
    for number, h in stored:
        assert h == "0x" + bytes(chain.provider.web3.eth.get_block(number)["hash"]).hex()


def test_crash_mid_batch__leaves_nothing__restart_resumes_without_dupes(
    system, make_indexer, engine, chain, creator, monkeypatch
):
    r = system.registry
    a = r.mint(1, os.urandom(32), [], [], "", sender=creator).return_value
    r.set_state(a, 2, b"\x00" * 32, sender=creator)
    r.mint(1, os.urandom(32), [(a, 10)], [], "", sender=creator)
    idx = make_indexer(batch_size=10_000)
    before = idx.checkpoint()

    def boom(*args):
        raise RuntimeError("power cut")

    monkeypatch.setitem(handlers.HANDLERS, ("CapsuleRegistry", "CapsuleStateChanged"), boom)
    with pytest.raises(RuntimeError, match="power cut"):
        idx.sync()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.Capsule)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(m.Journal)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(m.Manifest)).scalar_one() == 0
    assert idx.checkpoint() == before
    monkeypatch.undo()
    restarted = make_indexer(batch_size=2)  # a fresh process: state only from the database
    restarted.sync()
    restarted.sync()  # idempotent once caught up
    with engine.connect() as conn:
        capsules = conn.execute(select(m.Capsule.token_id)).scalars().all()
        assert sorted(capsules) == sorted(set(capsules)) and len(capsules) == r.next_id() - 1
        assert conn.execute(select(m.Capsule.state).where(m.Capsule.id == _caip(chain, system, a))).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(m.LineageEdge)).scalar_one() == sum(
            len(r.parents(i)) for i in range(1, r.next_id())
        )
    assert restarted.checkpoint() == chain.blocks.head.number


def test_confirmations__hold_back_recent_blocks(system, make_indexer, chain, creator):
    system.registry.mint(1, os.urandom(32), [], [], "", sender=creator)
    idx = make_indexer(confirmations=3)
    idx.sync()
    assert idx.checkpoint() == chain.blocks.head.number - 3


def test_reorg_to_shorter_chain__only_removes_events__rankings_and_manifests_follow(
    system, make_indexer, engine, chain, creator, consumer, admin, tmp_path
):
    """The new branch is shorter than the indexed one (BlockNotFound for the checkpoint) and
    holds no event: the removed rating leaves the rankings at once, the removed capsule's
    manifest row goes, and indexing goes on."""
    from codexfield.indexer.manifests import ManifestWorker
    from codexfield.indexer.service import run_cycle
    from codexfield.store import LocalStore

    r = system.registry
    base = r.mint(1, os.urandom(32), [], [], "", sender=creator).return_value
    idx = make_indexer()
    worker = ManifestWorker(engine, store=LocalStore(tmp_path / "store"))
    run_cycle(idx, worker, engine)
    snap = chain.snapshot()
    lost = r.mint(2, os.urandom(32), [(base, 100)], [], "", sender=creator).return_value
    system.lm.set_terms_capsule(77, base, sender=admin)
    system.lm.set_credential(77, 77, consumer, 1, sender=admin)
    system.reputation.rate(base, 77, 5, b"\x09" * 32, sender=consumer)
    chain.mine(2)
    run_cycle(idx, worker, engine)
    S, MF = m.CapsuleScore, m.Manifest
    base_id = _caip(chain, system, base)
    with engine.connect() as conn:
        assert conn.execute(select(S.rating_count).where(S.capsule_id == base_id)).scalar_one() == 1
        lost_cid = conn.execute(select(m.Capsule.cid).where(m.Capsule.id == _caip(chain, system, lost))).scalar_one()
        assert conn.execute(select(MF).where(MF.cid == lost_cid)).first() is not None
    indexed = idx.checkpoint()
    chain.restore(snap)
    assert chain.blocks.head.number < indexed  # a shorter chain, no new events
    out = run_cycle(idx, worker, engine)
    assert out["reorgs"] == 1 and out["applied"] == 0 and out["checkpoint"] <= chain.blocks.head.number
    with engine.connect() as conn:
        assert conn.execute(select(S.rating_count).where(S.capsule_id == base_id)).scalar_one() == 0
        assert conn.execute(select(S.rating_avg).where(S.capsule_id == base_id)).scalar_one() is None
        assert conn.execute(select(MF).where(MF.cid == lost_cid)).first() is None  # no orphan manifest
        assert (
            conn.execute(
                select(func.count()).select_from(m.Capsule).where(m.Capsule.id == _caip(chain, system, lost))
            ).scalar_one()
            == 0
        )
    again = r.mint(3, os.urandom(32), [], [], "", sender=creator).return_value
    run_cycle(idx, worker, engine)  # follows the new branch
    with engine.connect() as conn:
        assert conn.execute(select(m.Capsule.kind).where(m.Capsule.id == _caip(chain, system, again))).scalar_one() == 3
