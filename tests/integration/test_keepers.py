"""Keepers killed mid-run and restarted: no transaction is sent twice, nothing is missed.

A test hook raises `Crash` (a BaseException, like a SIGKILL for the keeper's Python code) at
exactly one point of `TxSender.send`: after the intent is recorded, after the transaction is
signed (not broadcast), after it was mined (not yet recorded). A new keeper on the same state
file then reconciles with the chain and finishes the work.
"""

from __future__ import annotations

import os

import pytest

from codexfield import royalty
from codexfield.keepers.base import Crash, KeeperState
from codexfield.keepers.finalizer import Finalizer
from codexfield.keepers.prober import Prober, probe_endpoints
from codexfield.keepers.settler import Settler

POINTS = ["after_intent", "after_sign", "after_send"]


def crash_on(point: str, nth: int = 1):
    seen = {"n": 0}

    def hook(intent_id: str) -> None:
        seen["n"] += 1
        if seen["n"] == nth:
            raise Crash(f"killed at {point} of {intent_id}")

    return {point: hook}


@pytest.fixture
def lineage(grid, admin, licensor, chain):
    """A -> B (30%) -> C (50%) owned by the licensor; revenue paid to C and B."""
    reg, router, usdc = grid.c["CapsuleRegistry"], grid.c["RoyaltyRouter"], grid.usdc
    start = chain.blocks.head.number + 1
    a = reg.mint(1, os.urandom(32), [], [], "", sender=licensor).return_value
    b = reg.mint(2, os.urandom(32), [(a, 3_000)], [], "", sender=licensor).return_value
    c = reg.mint(2, os.urandom(32), [(b, 5_000)], [], "", sender=licensor).return_value
    usdc.mint(admin, 2_000_000, sender=admin)
    usdc.approve(router, 2_000_000, sender=admin)
    router.pay(c, usdc, 1_000_003, sender=admin)
    router.pay(b, usdc, 333_333, sender=admin)
    return start, (a, b, c)


@pytest.mark.parametrize("point", POINTS)
def test_settler__killed_mid_round__restart_sends_each_batch_once(grid, admin, lineage, tmp_path, point, chain):
    start, (a, b, c) = lineage
    router, reg, usdc = grid.c["RoyaltyRouter"], grid.c["CapsuleRegistry"], grid.usdc
    state = tmp_path / "settler.sqlite"
    nonce0 = admin.nonce
    s1 = Settler(router, reg, admin, KeeperState(state), start_block=start, batch_size=1, hooks=crash_on(point, 2))
    with pytest.raises(Crash):
        s1.run_once()
    s2 = Settler(router, reg, admin, KeeperState(state), start_block=start, batch_size=1)  # restart
    s2.run_once()
    s2.run_once()  # idle: nothing new
    assert admin.nonce - nonce0 == 3  # C, B, A: three batches, each sent exactly once
    hops = list(router.RoyaltyPropagated.range(start, chain.blocks.head.number + 1))
    assert sorted(int(h.capsule_id) for h in hops) == sorted([a, b, c])
    graph = royalty.load_graph_from_chain(reg, [c, b])
    owed: dict[int, int] = {}
    for hop in royalty.settle(graph, {c: 1_000_003, b: 333_333}):  # merged vaults, children first
        owed[hop.capsule_id] = owed.get(hop.capsule_id, 0) + hop.to_owner
    for cap in (a, b, c):
        assert router.vault(cap, usdc) == 0
        assert router.claimable(cap, usdc) == owed[cap]  # exactly what the planner computes


def test_settler__credits_after_a_round__settled_in_the_next(grid, admin, lineage, tmp_path):
    start, (a, b, c) = lineage
    router, reg, usdc = grid.c["RoyaltyRouter"], grid.c["CapsuleRegistry"], grid.usdc
    s = Settler(router, reg, admin, KeeperState(tmp_path / "s.sqlite"), start_block=start)
    s.run_once()
    router.pay(c, usdc, 10_000, sender=admin)
    s.run_once()
    assert all(router.vault(x, usdc) == 0 for x in (a, b, c))


@pytest.mark.parametrize("point", POINTS)
def test_finalizer__killed_mid_epoch__restart_finalizes_each_once(grid, admin, tmp_path, point, chain):
    staking = grid.c["AccessStaking"]
    genesis, length = staking.genesis(), staking.epoch_length()
    window = staking.params().report_window
    chain.mine(timestamp=genesis + 3 * length + window + 1)  # epochs 0, 1, 2 can be finalized
    first = staking.next_epoch()
    start = chain.blocks.head.number
    nonce0 = admin.nonce
    state = tmp_path / "fin.sqlite"
    f1 = Finalizer(staking, grid.c["UsageMeter"], admin, KeeperState(state), hooks=crash_on(point, 2))
    with pytest.raises(Crash):
        f1.run_once()
    f2 = Finalizer(staking, grid.c["UsageMeter"], admin, KeeperState(state))
    f2.run_once()
    assert staking.next_epoch() == 3
    events = list(staking.EpochFinalized.range(start, chain.blocks.head.number + 1))
    assert sorted(int(e.epoch) for e in events) == list(range(first, 3))
    assert admin.nonce - nonce0 == 3 - first  # one call per epoch (no reports: one page), none repeated


def test_prober__killed_after_signing_its_report__restart_reports_once(grid, node, start_gateway, tmp_path, chain,
                                                                        project, stranger):
    staking = grid.c["AccessStaking"]
    grid.cdx.mint(node, 1_000 * 10**18, sender=grid.reporters[0])
    server = start_gateway()
    server.gateway.ensure_registered(server.url, 1_000 * 10**18)
    assert probe_endpoints({node.address: server.url}, probes=2)[node.address].successes == 2
    assert probe_endpoints({node.address: "http://127.0.0.1:9"}, probes=2, timeout=0.5)[node.address].successes == 0
    genesis, length = staking.genesis(), staking.epoch_length()
    epoch = staking.current_epoch()
    states = [tmp_path / f"p{i}.sqlite" for i in range(3)]
    probers = [Prober(staking, r, KeeperState(s), probes=2) for r, s in zip(grid.reporters, states)]
    outsider = Prober(staking, stranger, KeeperState(tmp_path / "outsider.sqlite"), probes=2)  # not in the committee
    for p in [*probers, outsider]:
        p.probe()
    chain.mine(timestamp=genesis + (epoch + 1) * length + 30)  # epoch over, window open
    nonce_out = stranger.nonce
    assert outsider.report() == [] and stranger.nonce == nonce_out  # skipped, nothing sent
    crashing = Prober(staking, grid.reporters[0], KeeperState(states[0]), hooks=crash_on("after_sign"))
    nonce0 = grid.reporters[0].nonce
    with pytest.raises(Crash):
        crashing.report()
    restarted = Prober(staking, grid.reporters[0], KeeperState(states[0]))  # reconciles: re-broadcasts
    assert restarted.report() == []  # already done by the reconcile, not sent again
    assert grid.reporters[0].nonce - nonce0 == 1
    for p in probers[1:]:
        assert p.report() == [epoch]
    samples = staking.reports(epoch, node)
    assert len(samples) == 3 and all(s.successes == s.probes > 0 for s in samples)
