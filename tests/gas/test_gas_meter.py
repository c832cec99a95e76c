"""UsageMeter gas: amortized per-voucher cost of `ingest` (DESIGN §6: <= 30k per voucher in a
warm batch of 32 from distinct consumers; <= 40 gas per settled call at 1,000 calls/voucher)."""

from __future__ import annotations

import os

import pytest

from codexfield import poa
from codexfield.sdk.metering import Domain

from gasrows import record
from support.signers import fresh
from support.system import register_node
from support.terms import terms_tuple
from support.vouchers import sign, voucher

EPOCH = 3600
WINDOW = 86400
# Issue 17 / DESIGN §6 targets. Each row first asserts a regression bound (a little above what
# this code measures: a change that costs more fails), then the target: met, the test passes; not
# met, it xfails with the measured figure (docs/metering.md: where each row stands against its
# floor). The cold / first-time rows are recorded and listed, with no target.
DESIGN_WARM_32 = 30_000
# Settlement blocks are dated one second after the vouchers' `issued_at` (`settle_after`), so the
# rows are the same from run to run (they used to vary by ~1k per voucher, see `settle_after`).
BOUND_WARM_32 = 40_900
TARGET_PER_CALL = 40
BOUND_PER_CALL = 40.9
TARGET_ALONE = 80_000
BOUND_ALONE = 139_200


def meets(gas, target, what):
    """Pass if `gas` meets `target`; otherwise xfail saying by how much (docs/metering.md)."""
    if gas > target:
        pytest.xfail(f"{what}: {gas:,.1f} gas measured, target {target:,}; floor analysis in docs/metering.md")


@pytest.fixture(scope="module")
def wired(project, admin, licensor, usdc, chain, node):
    registry = admin.deploy(project.CapsuleRegistry, admin, 500)
    lm = admin.deploy(project.LicenseManager, registry, admin, WINDOW)
    router = admin.deploy(project.RoyaltyRouter, registry, admin)
    identity = admin.deploy(project.IdentityRegistry)
    stake = admin.deploy(project.MockERC20, "Stake", "STK", 18)
    genesis = chain.pending_timestamp - 10
    staking = admin.deploy(
        project.AccessStaking, stake, stake, admin, genesis, EPOCH, poa.DEFAULT_PARAMS.as_tuple(), []
    )
    meter = admin.deploy(project.UsageMeter, lm, router, identity, admin, EPOCH, genesis, WINDOW, 3 * 86400, 200)
    registry.wire(lm, sender=admin)
    router.wire(lm, meter, sender=admin)
    lm.wire(meter, router, sender=admin)
    meter.wire(staking, sender=admin)
    router.set_token_allowed(usdc, True, sender=admin)
    capsule = registry.mint(2, os.urandom(32), [], [], "", sender=licensor).return_value
    terms_id = lm.create_terms(terms_tuple(capsule, usdc, price=3, revocation=0), sender=licensor).return_value
    w = dict(
        lm=lm,
        meter=meter,
        router=router,
        usdc=usdc,
        terms_id=terms_id,
        domain=Domain.of(meter),
        staking=staking,
        stake=stake,
        genesis=genesis,
    )
    register(w, node)
    return w


def register(wired, who):
    """`who` becomes a serving node (minimum stake)."""
    register_node(wired["staking"], wired["stake"], who)


def consumers(wired, admin, n):
    """n distinct consumers (fresh keys), each with a credential and funded escrow."""
    out = []
    total = n * 10**12
    wired["usdc"].mint(admin, total, sender=admin)
    wired["usdc"].approve(wired["meter"], total, sender=admin)
    for _ in range(n):
        key = fresh()
        cred = wired["lm"].purchase(wired["terms_id"], key.address, 0, sender=admin).return_value
        wired["meter"].deposit(wired["usdc"], 10**12, key.address, sender=admin)
        out.append((key, cred))
    return out


def one_epoch(wired, chain, room=900):
    """Start the next epoch if fewer than `room` seconds are left in this one: a warm row compares
    two batches in the same epoch (a batch that opens an epoch also writes each node's fresh
    usage slot for it, ≈ 20k, which is not the steady state measured)."""
    left = EPOCH - (chain.pending_timestamp - wired["genesis"]) % EPOCH
    if left < room:
        chain.pending_timestamp += left + 1


def now(chain):
    return max(chain.blocks.head.timestamp, chain.pending_timestamp - 1)


def batch(wired, node, people, mu, calls):
    """Vouchers of `people` signed now, settled in the next block, one second later."""
    from ape import chain

    vs, sigs = [], []
    at = now(chain)
    for key, cred in people:
        v = voucher(cred, node, key, mu, calls, 0, calls * 20, issued_at=at)
        vs.append(v.as_tuple())
        sigs.append(sign(v, wired["domain"], key))
    settle_after(chain, at)
    return vs, sigs


def settle_after(chain, at):
    """The next block (the settlement) is dated one second after `at`, the vouchers' `issued_at`.
    Steady state: a node settles usage signed before the block. Usage dated in the settling block
    itself costs ≈ 1k more per voucher (LicenseManager.consume then asks the CapsuleRegistry
    `state_at` for every voucher: its per-transaction memo covers past times only), which is what
    made the warm rows vary between runs when the block's time was left to the wall clock."""
    chain.pending_timestamp = at + 1


def test_gas__ingest_per_voucher_cold_and_warm(wired, admin, node, chain):
    people = consumers(wired, admin, 64)
    meter = wired["meter"]
    results = {}
    for size in (1, 8, 32, 64):
        group = people[:size]
        # cold: first voucher of each channel (and of each credential's usage state)
        fresh = consumers(wired, admin, size) if size != 64 else people
        one_epoch(wired, chain)
        vs, sigs = batch(wired, node, fresh, 100, 10)
        tx = meter.ingest(vs, sigs, sender=node)
        assert tx.return_value == size
        results[("cold", size)] = tx.gas_used / size
        # warm: the same channels settle again
        vs, sigs = batch(wired, node, fresh, 200, 20)
        tx = meter.ingest(vs, sigs, sender=node)
        assert tx.return_value == size
        results[("warm", size)] = tx.gas_used / size
        del group
    for (kind, size), gas in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        target = "≤ 30k (DESIGN §6)" if (kind, size) == ("warm", 32) else None
        record("meter", f"UsageMeter.ingest per voucher, {kind}, batch of {size}, distinct consumers", int(gas), target)
    assert results[("warm", 32)] <= BOUND_WARM_32, results
    meets(results[("warm", 32)], DESIGN_WARM_32, "per voucher, warm batch of 32")


def test_gas__per_settled_call_at_1000_calls_per_voucher(wired, admin, node, chain):
    people = consumers(wired, admin, 32)
    meter = wired["meter"]
    one_epoch(wired, chain)
    vs, sigs = batch(wired, node, people, 1_000, 1_000)
    meter.ingest(vs, sigs, sender=node)
    vs, sigs = batch(wired, node, people, 2_000, 2_000)
    tx = meter.ingest(vs, sigs, sender=node)
    per_call = tx.gas_used / (32 * 1_000)
    record(
        "meter",
        "UsageMeter.ingest per 1,000 settled calls (one voucher of 1,000 calls, warm batch of 32)",
        round(per_call * 1_000),
        "≤ 40,000 = 40/call (DESIGN §6); Livepeer 190k–300k per winning ticket",
    )
    assert per_call <= BOUND_PER_CALL
    meets(per_call, TARGET_PER_CALL, "per settled call at 1,000 calls per voucher")


def test_gas__settle_one_voucher_alone_warm_channel(wired, admin, node, chain):
    """Issue 17: one voucher settled alone on a warm channel (the node already settled it once)."""
    people = consumers(wired, admin, 1)
    meter = wired["meter"]
    one_epoch(wired, chain)
    vs, sigs = batch(wired, node, people, 100, 10)
    meter.ingest(vs, sigs, sender=node)
    vs, sigs = batch(wired, node, people, 200, 20)
    tx = meter.ingest(vs, sigs, sender=node)
    assert tx.return_value == 1
    record(
        "meter",
        "UsageMeter.ingest, one voucher alone (warm channel)",
        tx.gas_used,
        "≤ 80k (issue 17); The Graph TAP v1 Escrow.redeem 114,832 (cited: not on the npm registry)",
    )
    assert tx.gas_used <= BOUND_ALONE
    meets(tx.gas_used, TARGET_ALONE, "one voucher alone, warm channel")


def test_gas__one_consumer_netted_in_a_batch(wired, admin, node, accounts, chain):
    """Many channels of one consumer (one per node) in one batch, settled by an operator all 32
    nodes authorised: escrow is read once per voucher, but router, node and fee totals are
    netted per batch."""
    ((key, cred),) = consumers(wired, admin, 1)
    meter = wired["meter"]
    nodes = []
    for _ in range(32):
        n = accounts.generate_test_account()
        admin.transfer(n, 10**17)
        register(wired, n)
        meter.set_operator(node, True, sender=n)
        nodes.append(n.address)

    def vouchers(mu):
        vs, sigs = [], []
        at = now(chain)
        for n in nodes:
            v = voucher(cred, n, key, mu, 10, 0, 100, issued_at=at)
            vs.append(v.as_tuple())
            sigs.append(sign(v, wired["domain"], key))
        settle_after(chain, at)
        return vs, sigs

    one_epoch(wired, chain)
    meter.ingest(*vouchers(100), sender=node)
    tx = meter.ingest(*vouchers(200), sender=node)
    record(
        "meter",
        "UsageMeter.ingest per voucher, warm, batch of 32, one consumer across 32 nodes",
        tx.gas_used // 32,
        None,
    )


def test_gas__deposit_and_withdraw(wired, admin, consumer, chain):
    usdc, meter = wired["usdc"], wired["meter"]
    usdc.mint(consumer, 10**9, sender=admin)
    usdc.approve(meter, 10**9, sender=consumer)
    tx = meter.deposit(usdc, 10**6, consumer, sender=consumer)
    record("meter", "UsageMeter.deposit", tx.gas_used, None)
    tx = meter.request_withdrawal(usdc, 10**6, sender=consumer)
    record("meter", "UsageMeter.request_withdrawal", tx.gas_used, None)
    chain.pending_timestamp += 3 * 86400
    tx = meter.withdraw(usdc, consumer, sender=consumer)
    record("meter", "UsageMeter.withdraw", tx.gas_used, None)


def test_gas__purchase_through_the_real_router(wired, admin, licensor, consumer, usdc):
    """DESIGN §6: purchase <= 120k, with the upfront fee credited in the real RoyaltyRouter
    (steady state: the router already holds the token and the capsule's vault is non-zero; the
    holder already holds a credential)."""
    lm = wired["lm"]
    terms = lm.terms(wired["terms_id"])
    paid = (
        terms.capsule_id,
        usdc,
        3,
        5_000_000,
        b"\x11" * 32,
        30 * 86400,
        0,
        0,
        0,
        terms.scope,
        0,
        0,
        0,
        0,
        False,
        b"\x33" * 32,
    )
    tid = lm.create_terms(paid, sender=licensor).return_value
    usdc.mint(consumer, 10**9, sender=admin)
    usdc.approve(lm, 10**9, sender=consumer)
    lm.purchase(tid, consumer, 5_000_000, sender=consumer)  # warms the router's balance and the vault
    tx = lm.purchase(tid, consumer, 5_000_000, sender=consumer)
    record(
        "license",
        "LicenseManager.purchase (upfront fee into the real RoyaltyRouter, steady state)",
        tx.gas_used,
        "≤ 120k (DESIGN §6)",
    )
    assert tx.gas_used <= 120_000
