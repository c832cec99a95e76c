"""The demo flow, smaller (in-process gateway on 127.0.0.1, real HTTP), every balance to the wei.

The expected numbers are computed here from the prices, the fee and the lineage share, not
read back from the contracts: escrow debits, the router's vaults and claimables after the
settler ran, the node's usage balance, the protocol fee, the PoA reward and the wallets.
"""

from __future__ import annotations

import pytest

from codexfield import deployments, royalty
from codexfield.demo import Actors, Prices, run_flow, sample_texts
from codexfield.node.model import mu_for

CALLS = 7
FEE_BPS = 200
SHARE_BPS = 2_000
RPW = 10**36


@pytest.fixture(scope="module")
def flow(accounts, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(deployments, "DEPLOYMENTS_DIR", tmp_path_factory.mktemp("books"))
    try:
        actors = Actors.from_test_accounts(accounts)
        result = run_flow(
            actors,
            calls=CALLS,
            workdir=tmp_path_factory.mktemp("flow") / "w",
            log=lambda s: None,
            probe_rounds=2,
            max_age_s=3_600,
        )
        yield actors, result
    finally:
        mp.undo()


def test_flow__usage_is_metered_exactly(flow):
    actors, r = flow
    lm, meter = r.contracts["LicenseManager"], r.contracts["UsageMeter"]
    mus = [mu_for(t) for t in sample_texts(CALLS)]
    assert r.mu_per_call == mus
    total = sum(mus)
    settled = meter.settled(r.credential, actors.node, actors.consumer)
    assert (settled[0], settled[1], settled[2]) == (total, CALLS, 0)
    assert lm.credential(r.credential).mu_used == total
    assert {p["label"] for p in r.predictions} <= {"billing", "technical", "account", "shipping"}


def test_flow__every_balance_to_the_wei(flow):
    actors, r = flow
    p = Prices()
    total = sum(mu_for(t) for t in sample_texts(CALLS))
    lic_price, node_price = 2_000, p.node_price  # 0.002 USDC per MU; 0.001 USDC per MU
    lic, nod = total * lic_price, total * node_price
    fee_l, fee_n = lic * FEE_BPS // 10_000, nod * FEE_BPS // 10_000
    b, a = r.before, r.after

    # Consumer escrow: deposit minus exactly MU x (licence + node price).
    assert b["escrow"] == p.deposit
    assert a["escrow"] == p.deposit - lic - nod
    assert a["wallet_consumer"] == 0  # the upfront and the deposit were all it had

    # Node: usage earnings (minus fee) claimed to the wallet.
    assert r.claimed["node_usage"] == nod - fee_n
    assert a["node_balance"] == 0

    # Protocol fee: both parts, swept into the PoA pool of the served epoch.
    assert r.fees_swept == fee_l + fee_n
    staking = r.contracts["AccessStaking"]
    assert staking.reward_pool(r.served_epoch) == fee_l + fee_n
    scored = [s for s in r.scores if s["epoch"] == r.served_epoch]
    assert len(scored) == 1 and scored[0]["weight"] > 0
    w = scored[0]["weight"]
    reward = w * ((fee_l + fee_n) * RPW // w) // RPW  # the only earning node takes the pool (floor)
    assert r.claimed["node_rewards"] == reward
    assert a["wallet_node"] == nod - fee_n + reward
    assert a["staking_usdc"] == fee_l + fee_n - reward  # rounding dust stays reserved

    # Royalties: model revenue = consumer upfront + licence part; 20% of it to the dataset.
    model_revenue = 1 * 10**6 + lic - fee_l
    (to_dataset,), to_model_owner = royalty.split(model_revenue, [SHARE_BPS])
    assert to_dataset == model_revenue * SHARE_BPS // 10_000
    dataset_revenue = 5 * 10**6 + to_dataset  # its own upfront (derivative credential) + the share
    assert r.claimed["model_owner"] == to_model_owner
    assert r.claimed["dataset_owner"] == dataset_revenue
    assert a["wallet_model_owner"] == to_model_owner  # it spent its 5 USDC on the derivative credential
    assert a["wallet_dataset_owner"] == dataset_revenue
    for k in ("vault_dataset", "vault_model", "claimable_dataset", "claimable_model"):
        assert a[k] == 0, k

    # Conservation: nothing is left anywhere but the escrow, the dust and (none) fees.
    usdc = r.usdc
    assert usdc.balanceOf(r.contracts["UsageMeter"]) == a["escrow"]
    assert usdc.balanceOf(r.contracts["RoyaltyRouter"]) == 0


def test_flow__settler_propagated_leaf_to_root_once(flow):
    actors, r = flow
    router = r.contracts["RoyaltyRouter"]
    hops = list(router.RoyaltyPropagated.range(r.book.block, router.chain_manager.blocks.head.number + 1))
    by = {}
    for h in hops:
        by.setdefault(int(h.capsule_id), []).append(h)
        assert h.to_parents + h.to_owner == h.amount
    assert sorted(by) == [r.dataset_id, r.model_id]
    assert len(by[r.model_id]) == 1  # one propagation of the model's whole vault
    first_model = min(h.block_number for h in by[r.model_id])
    assert any(h.block_number >= first_model for h in by[r.dataset_id])  # the parent after its child


def test_flow__lineage_dids_and_node_registration(flow):
    actors, r = flow
    registry, identity, staking = (r.contracts[k] for k in ("CapsuleRegistry", "IdentityRegistry", "AccessStaking"))
    assert [(p.capsule_id, p.share_bps) for p in registry.parents(r.model_id)] == [(r.dataset_id, SHARE_BPS)]
    assert registry.ownerOf(r.model_id) == actors.model_owner
    assert identity.validDelegate(actors.consumer, b"sigAuth".ljust(32, b"\0"), r.hot_key)
    n = staking.node(actors.node)
    assert n.status == 1 and n.stake == Prices().stake
    assert staking.endpoint(actors.node) == r.node_url
    # three reporters, one report each for the served epoch
    reports = staking.reports(r.served_epoch, actors.node)
    assert len(reports) == 3 and all(s.successes == s.probes for s in reports)
