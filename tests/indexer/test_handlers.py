"""Handlers for every contract's events, from synthetic decoded events (DESIGN §3 field lists),
applied through the real batch path; the undo journal restores any earlier block exactly."""

from __future__ import annotations

from sqlalchemy import select

from codexfield import scopes
from codexfield.indexer import journal, ranking
from codexfield.indexer import models as m
from codexfield.indexer.models import JOURNALED

from synth import (
    ADDR,
    ALICE,
    BOB,
    CHAIN,
    NODE,
    USDC,
    Feed,
    attested,
    capsule_id,
    claimed,
    credited,
    issued,
    minted,
    propagated,
    rated,
    state,
    terms,
    usage,
)


def _one(engine, model, **key):
    t = model.__table__
    with engine.connect() as conn:
        return conn.execute(select(t).where(*[t.c[k] == v for k, v in key.items()])).mappings().one()


def _dump(engine):
    with engine.connect() as conn:
        return {
            name: sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in conn.execute(select(t)).mappings())
            for name, t in JOURNALED.items()
        }


def test_license_events__build_terms_and_credentials(engine):
    f = Feed(engine)
    f.block_of([minted(1)])
    f.block_of([terms(7, 1, price=9, scope=scopes.mask_of(["research", "derivatives"])), issued(3, 7, 1)])
    f.block_of(
        [
            ("LicenseManager", "TermsActive", {"terms_id": 7, "active": False}),
            (
                "LicenseManager",
                "CredentialRevoked",
                {"credential_id": 3, "by": ALICE, "reason": b"\x09" * 32, "effective_at": 1234},
            ),
            ("LicenseManager", "Transfer", {"sender": BOB, "receiver": ALICE, "token_id": 3}),
        ]
    )
    t = _one(engine, m.Terms, terms_id=7)
    assert t["capsule_id"] == capsule_id(1) and t["price_per_mu"] == 9 and not t["active"]
    assert t["scope_names"] == ",research,derivatives," and t["credentials_issued"] == 1
    c = _one(engine, m.Credential, credential_id=3)
    assert c["holder"] == ALICE and c["revoked_effective_at"] == 1234 and c["terms_id"] == t["id"]


def test_usage_recorded__sums_channels_capsules_and_node_epochs(engine):
    f = Feed(engine, epoch_length=100, genesis=0)
    f.block_of([minted(1), terms(1, 1), issued(1, 1, 1)], timestamp=50)
    f.block_of([usage(1, 1, mu=10, calls=5, failures=1, latency=500)], timestamp=150)
    f.block_of([usage(1, 1, mu=2**200, calls=3, failures=0, latency=90)], timestamp=160)
    f.block_of([usage(1, 1, mu=1, calls=1, failures=1, latency=10)], timestamp=250)
    ch = _one(engine, m.UsageChannel, credential_id=f"eip155:{CHAIN}/erc721:{ADDR['LicenseManager']}/1")
    assert (ch["mu"], ch["calls"], ch["failures"], ch["latency_ms"], ch["license_amount"]) == (
        11 + 2**200,
        9,
        2,
        600,
        150,
    )
    cu = _one(engine, m.CapsuleUsage, capsule_id=capsule_id(1))
    assert (cu["calls"], cu["failures"], cu["mu"]) == (9, 2, 11 + 2**200)
    e1 = _one(engine, m.NodeEpochUsage, node=f"eip155:{CHAIN}:{NODE}", epoch=1)
    e2 = _one(engine, m.NodeEpochUsage, node=f"eip155:{CHAIN}:{NODE}", epoch=2)
    assert (e1["calls"], e1["latency_ms"], e2["calls"]) == (8, 590, 1)


def test_royalties__propagation_splits_like_the_router(engine):
    f = Feed(engine)
    f.block_of([minted(1), minted(2), minted(3, parents=[(1, 3333), (2, 1667)])])
    f.block_of([credited(3, 1001)])
    # router: parent i gets floor(amount * cum_i / BPS) - given: 333 then 500 - 333 = 167
    # 1 and 2 have no parents: the router pays their parts straight into their claimables
    f.block_of([propagated(3, 1001, 500)])
    f.block_of([claimed(3, 501)])
    v3 = _one(engine, m.RoyaltyVault, capsule_id=capsule_id(3), token=USDC)
    assert (v3["vault"], v3["claimable"], v3["credited_total"], v3["claimed_total"]) == (0, 0, 1001, 501)
    v1 = _one(engine, m.RoyaltyVault, capsule_id=capsule_id(1), token=USDC)
    v2 = _one(engine, m.RoyaltyVault, capsule_id=capsule_id(2), token=USDC)
    assert (v1["vault"], v1["claimable"], v1["from_children_total"]) == (0, 333, 333)
    assert (v2["vault"], v2["claimable"], v2["from_children_total"]) == (0, 167, 167)
    flow = _one(engine, m.RoyaltyFlow, source=capsule_id(3), target=capsule_id(2), token=USDC)
    assert flow["amount"] == 167


def test_royalties__parent_with_parents__gets_a_vault(engine):
    f = Feed(engine)
    f.block_of([minted(1), minted(2, parents=[(1, 5000)]), minted(3, parents=[(2, 1000), (1, 1000)])])
    f.block_of([credited(3, 100), propagated(3, 100, 20)])
    v1 = _one(engine, m.RoyaltyVault, capsule_id=capsule_id(1), token=USDC)
    v2 = _one(engine, m.RoyaltyVault, capsule_id=capsule_id(2), token=USDC)
    assert (v2["vault"], v2["claimable"]) == (10, 0)  # 2 has a parent: its part waits for its own hop
    assert (v1["vault"], v1["claimable"]) == (0, 10)


def test_staking_events__nodes_and_epoch_scores(engine):
    f = Feed(engine)
    node = f"eip155:{CHAIN}:{NODE}"
    f.block_of(
        [
            (
                "AccessStaking",
                "NodeRegistered",
                {
                    "node": NODE,
                    "endpoint": "https://n.example",
                    "services": 3,
                    "region": b"eu-west\x00",
                    "tee_signer": ALICE,
                    "stake": 10**21,
                    "reliability": 5 * 10**17,
                },
            )
        ]
    )
    f.block_of(
        [
            (
                "AccessStaking",
                "Reported",
                {"epoch": 4, "reporter": BOB, "node": NODE, "probes": 10, "successes": 9, "latency_ms": 120},
            ),
            (
                "AccessStaking",
                "Reported",
                {"epoch": 4, "reporter": ALICE, "node": NODE, "probes": 10, "successes": 7, "latency_ms": 80},
            ),
            (
                "AccessStaking",
                "EpochScored",
                {"epoch": 4, "node": NODE, "quality": 8 * 10**17, "reliability": 6 * 10**17, "weight": 7, "strikes": 1},
            ),
        ]
    )
    f.block_of(
        [
            ("AccessStaking", "NodeJailed", {"node": NODE, "until": 999, "slashed": 10**18}),
            ("AccessStaking", "StakeChanged", {"node": NODE, "stake": 9 * 10**20, "unbonding": 0, "thaw_end": 0}),
            ("AccessStaking", "SomethingNew", {"node": NODE}),
        ]
    )
    n = _one(engine, m.Node, id=node)
    assert (n["endpoint"], n["region"], n["status"], n["strikes"], n["jailed_until"]) == (
        "https://n.example",
        "eu-west",
        2,
        1,
        999,
    )
    assert n["stake"] == 9 * 10**20 and n["slashed_total"] == 10**18 and n["reliability"] == 6 * 10**17
    es = _one(engine, m.EpochScore, node=node, epoch=4)
    assert (es["reports"], es["probes"], es["successes"], es["quality"]) == (2, 20, 16, 8 * 10**17)
    f.block_of([("AccessStaking", "NodeEjected", {"node": NODE, "unbonding": 9 * 10**20, "thaw_end": 5000})])
    assert _one(engine, m.Node, id=node)["status"] == 3


def test_rated_again__replaces_the_credentials_stars(engine):
    f = Feed(engine)
    f.block_of([minted(1), rated(1, 5, 2), rated(1, 6, 4)])
    f.block_of([rated(1, 5, 5)])
    with engine.connect() as conn:
        stars = sorted(conn.execute(select(m.Rating.stars).where(m.Rating.capsule_id == capsule_id(1))).scalars())
    assert stars == [4, 5]


def test_journal__rollback_restores_every_table_exactly(engine):
    f = Feed(engine)
    f.block_of([minted(1), minted(2, parents=[(1, 5000)]), terms(1, 2), issued(1, 1, 2), credited(2, 100)])
    fork = f.block_of([usage(1, 2), rated(2, 1, 4), attested(1, 2)])
    snapshot = _dump(engine)
    f.block_of([state(2, 4), propagated(2, 100, 50), usage(1, 2), rated(2, 1, 1), minted(3, parents=[(2, 10)])])
    f.block_of(
        [
            claimed(2, 50),
            ("Reputation", "AttestationRevoked", {"attestation_id": 1}),
            (
                "LicenseManager",
                "CredentialRevoked",
                {"credential_id": 1, "by": ALICE, "reason": b"", "effective_at": 1},
            ),
        ]
    )
    assert _dump(engine) != snapshot
    with engine.begin() as conn:
        assert journal.rollback_to(conn, CHAIN, fork) > 0
    assert _dump(engine) == snapshot


def test_moderation__flag_marks_derivatives_transitively_never_deletes(engine):
    f = Feed(engine)
    f.block_of([minted(1), minted(2, parents=[(1, 100)]), minted(3, parents=[(2, 100)]), minted(4), minted(5)])
    f.block_of([state(1, 4), state(4, 3), state(5, 2)])
    ranking.refresh(engine)
    mod = {i: _one(engine, m.CapsuleScore, capsule_id=capsule_id(i))["moderation"] for i in range(1, 6)}
    assert mod == {1: "flagged", 2: "derivative_of_flagged", 3: "derivative_of_flagged", 4: "disabled", 5: "deprecated"}
    assert all(_one(engine, m.CapsuleScore, capsule_id=capsule_id(i))["score"] == 0 for i in (1, 2, 3, 4))


def test_ranking__formula_values():
    s = ranking.score(
        calls=98,
        failures=8,
        latency_ms=98 * 250,
        rating_sum=9,
        rating_count=2,
        audited=True,
        max_calls=98,
        mean_stars=3.0,
    )
    success, latency, bayes = 91 / 100, 1 / (1 + 0.25), (15 + 9) / 7
    expected = 100 * (0.30 * success + 0.15 * latency + 0.25 * (bayes - 1) / 4 + 0.15 + 0.15 * 1.0)
    assert abs(s["score"] - expected) < 1e-9 and abs(s["rating_bayes"] - bayes) < 1e-12
    nothing = ranking.score(0, 0, 0, 0, 0, False, 0, 3.0)
    assert abs(nothing["score"] - 100 * (0.30 * 0.5 + 0.15 * 0.5 + 0.25 * 0.5)) < 1e-9
    assert (
        ranking.score(10, 0, 100, 0, 0, False, 10, 3.0)["score"]
        > ranking.score(10, 5, 100, 0, 0, False, 10, 3.0)["score"]
    )


def test_ranking__audits_and_ratings_raise_the_score(engine):
    f = Feed(engine)
    f.block_of(
        [
            minted(1),
            minted(2),
            minted(3),
            rated(1, 1, 5),
            rated(1, 2, 5),
            attested(1, 1),
            attested(2, 2, valid_until=1),
            rated(3, 3, 1),
        ]
    )
    ranking.refresh(engine)
    s = {i: _one(engine, m.CapsuleScore, capsule_id=capsule_id(i)) for i in (1, 2, 3)}
    assert s[1]["audits_valid"] == 1 and s[2]["audits_valid"] == 0  # expired attestation does not count
    assert s[1]["score"] > s[2]["score"] > s[3]["score"]


class _Forked:
    """A chain whose blocks above `fork` have different hashes than the ones indexed."""

    def __init__(self, head: int, fork: int):
        self.head, self.fork = head, fork

    def block_number(self):
        return self.head

    def header(self, n):
        import hashlib

        h = hashlib.sha256(f"{n}".encode()).hexdigest() if n <= self.fork else "ff" * 32
        return {"hash": "0x" + h, "parentHash": "0x" + "00" * 32, "timestamp": n * 10}

    def logs(self, start, end, addresses):
        return []


def test_reorg_walk_back__to_highest_matching_block_then_resumes(engine):
    f = Feed(engine)
    f.block_of([minted(1)])
    f.block_of([minted(2)])
    keep = f.block_of([minted(3)])
    f.block_of([state(1, 3), minted(4)])
    f.idx.source = _Forked(head=10, fork=keep)
    r = f.idx.step()
    assert r.reorg_to == keep
    with engine.connect() as conn:
        ids = set(conn.execute(select(m.Capsule.id)).scalars())
        assert ids == {capsule_id(1), capsule_id(2), capsule_id(3)}
        assert conn.execute(select(m.Capsule.state).where(m.Capsule.id == capsule_id(1))).scalar_one() == 1
    assert f.idx.step().end == 10 and f.idx.checkpoint() == 10  # resumes on the new branch


def test_reorg_below_pruned_journal__raises_deep_reorg(engine):
    import pytest

    from codexfield.indexer.ingest import DeepReorg

    f = Feed(engine)
    f.idx.journal_depth = 1
    for i in range(1, 6):
        f.block_of([minted(i)])
    f.idx.source = _Forked(head=10, fork=0)
    with pytest.raises(DeepReorg, match="re-index"):
        f.idx.step()


def test_meter_configured__gives_the_epochs_without_a_chain_read(engine):
    """Issue 16 #10: the indexer takes epoch_length / genesis from the meter's constructor event,
    keeps them across a restart, and (as the meter's node_usage) counts only paid vouchers."""
    from synth import meter_configured

    f = Feed(engine, epoch_length=None)
    assert f.idx.epoch_length is None
    f.block_of([meter_configured(epoch_length=100, genesis=40), minted(1), terms(1, 1), issued(1, 1, 1)], timestamp=50)
    assert (f.idx.epoch_length, f.idx.genesis) == (100, 40)
    f.block_of([usage(1, 1, mu=10, calls=5), usage(1, 1, mu=0, calls=9, failures=9, paid=False)], timestamp=150)
    e1 = _one(engine, m.NodeEpochUsage, node=f"eip155:{CHAIN}:{NODE}", epoch=1)
    assert (e1["calls"], e1["failures"], e1["mu"]) == (5, 1, 10)
    mc = _one(engine, m.MeterConfig, chain_id=CHAIN)
    assert (mc["epoch_length"], mc["genesis"], mc["settlement_window"], mc["withdrawal_thaw"]) == (
        100,
        40,
        86400,
        3 * 86400,
    )
    again = Feed(engine, epoch_length=None)  # a restart reads them from the catalog, not the chain
    assert (again.idx.epoch_length, again.idx.genesis) == (100, 40)
