"""Keepers killed mid-run and restarted: no transaction is sent twice, nothing is missed.

A test hook raises `Crash` (a BaseException, like a SIGKILL for the keeper's Python code) at
exactly one point of `TxSender.send` — every point between intent and receipt: after the
intent is recorded (nothing signed), after the transaction is signed (not broadcast), after it
was broadcast (receipt not awaited), after it was mined (receipt not recorded), after the
receipt was recorded (the keeper's follow-up not done). A new keeper on the same state file
then reconciles with the chain and finishes the work, sending nothing twice. The prober is
also killed for real: a subprocess on the same anvil SIGKILLs itself at the chosen point.
"""

from __future__ import annotations

import os

import pytest

from codexfield import royalty
from codexfield.keepers.base import Crash, KeeperState, TxSender
from codexfield.keepers.finalizer import Finalizer
from codexfield.keepers.prober import Prober, probe_endpoints
from codexfield.keepers.settler import Settler

POINTS = list(TxSender.POINTS)


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
    # C, B: two batches, each sent exactly once; A, a root reached only as B's parent, has none
    assert admin.nonce - nonce0 == 2
    hops = list(router.RoyaltyPropagated.range(start, chain.blocks.head.number + 1))
    # A has no parents: B's hop pays A's part straight into A's claimable
    assert sorted(int(h.capsule_id) for h in hops) == sorted([b, c])
    graph = royalty.load_graph_from_chain(reg, [c, b])
    # merged vaults, children first
    owed = royalty.claimables(graph, royalty.settle(graph, {c: 1_000_003, b: 333_333}))
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


@pytest.mark.parametrize("point", POINTS)
def test_prober__killed_at_each_point__restart_reports_the_epoch_once(
    grid, node, start_gateway, tmp_path, chain, project, stranger, point
):
    """Quorum 3: the crashed reporter's report must land (exactly once) or the epoch does not count;
    a prober outside the epoch's committee sends nothing."""
    staking = grid.c["AccessStaking"]
    grid.cdx.mint(node, 1_000 * 10**18, sender=grid.reporters[0])
    server = start_gateway()
    server.gateway.ensure_registered(server.url, 1_000 * 10**18)
    assert probe_endpoints({node.address: server.url}, probes=2)[node.address].successes == 2
    assert probe_endpoints({node.address: "http://127.0.0.1:9"}, probes=2, timeout=0.5)[node.address].successes == 0
    genesis, length = staking.genesis(), staking.epoch_length()
    chain.mine(timestamp=max(chain.blocks.head.timestamp, genesis) + length)  # a fresh epoch per case
    epoch = staking.current_epoch()
    states = [tmp_path / f"p{i}.sqlite" for i in range(3)]
    probers = [Prober(staking, r, KeeperState(s), probes=2) for r, s in zip(grid.reporters, states)]
    outsider = Prober(staking, stranger, KeeperState(tmp_path / "outsider.sqlite"), probes=2)  # not in the committee
    for p in [*probers, outsider]:
        p.probe()
    chain.mine(timestamp=genesis + (epoch + 1) * length + 30)  # epoch over, window open
    nonce_out = stranger.nonce
    assert outsider.report() == [] and stranger.nonce == nonce_out  # skipped, nothing sent
    crashing = Prober(staking, grid.reporters[0], KeeperState(states[0]), hooks=crash_on(point))
    nonce0 = grid.reporters[0].nonce
    with pytest.raises(Crash):
        crashing.report()
    restarted = Prober(staking, grid.reporters[0], KeeperState(states[0]))  # reconciles
    restarted.report()
    assert restarted.report() == []  # idle now
    assert grid.reporters[0].nonce - nonce0 == 1  # exactly one report transaction from the crashed reporter
    for p in probers[1:]:
        assert p.report() == [epoch]
    samples = staking.reports(epoch, node)
    assert len(samples) == 3 and all(s.successes == s.probes > 0 for s in samples)  # quorum reached


class Outage(ConnectionError):
    """A transient RPC failure (what `is_transient` retries), raised by a test hook."""


@pytest.mark.parametrize("fault", ["crash", "rpc_error"])
def test_settler__credit_arriving_mid_round__propagated_by_the_next_round(grid, admin, lineage, tmp_path, chain, fault):
    """A credit to C lands after C's batch went out, then the round is interrupted (killed, or an
    RPC outage longer than the retries): C's new vault must not be dropped."""
    start, (a, b, c) = lineage
    router, reg, usdc = grid.c["RoyaltyRouter"], grid.c["CapsuleRegistry"], grid.usdc
    state = tmp_path / "settler.sqlite"

    def credit_then_fail(intent_id: str) -> None:
        if intent_id.endswith(":0"):  # C's batch is done: a new payment to C, then the fault
            router.pay(c, usdc, 7_777, sender=admin)
            raise Crash("killed mid-round") if fault == "crash" else Outage("connection refused")

    s1 = Settler(
        router, reg, admin, KeeperState(state), start_block=start, batch_size=1, hooks={"after_done": credit_then_fail}
    )
    with pytest.raises(Crash if fault == "crash" else Outage):
        s1.run_once()
    assert router.vault(c, usdc) == 7_777
    s2 = Settler(router, reg, admin, KeeperState(state), start_block=start, batch_size=1) if fault == "crash" else s1
    s2.sender.hooks = {}
    s2.run_once()  # resumes the round (B, A), then a new round for C's late credit
    for cap in (a, b, c):
        assert router.vault(cap, usdc) == 0, cap
    assert KeeperState(state).get(f"pending:{str(usdc.address).lower()}") == {}


def test_settler__credit_noted_while_round_open__kept_pending(grid, admin, lineage, tmp_path):
    """The event-handler path (`note_credit`, no re-scan) while a round runs: C is credited again
    after its batch went out; the same `settle` call closes the round and settles C again."""
    start, (a, b, c) = lineage
    router, reg, usdc = grid.c["RoyaltyRouter"], grid.c["CapsuleRegistry"], grid.usdc
    token = str(usdc.address).lower()

    def late_credit(intent_id: str) -> None:
        if intent_id == f"settle:{token}:1:0":
            router.pay(c, usdc, 4_242, sender=admin)
            s.note_credit(c, token)

    s = Settler(
        router,
        reg,
        admin,
        KeeperState(tmp_path / "s.sqlite"),
        start_block=start,
        batch_size=1,
        hooks={"after_done": late_credit},
    )
    s.scan()
    s.settle()
    assert all(router.vault(x, usdc) == 0 for x in (a, b, c))
    assert s.state.get(f"round:{token}") is None and s.state.get(f"pending:{token}") == {}


PROBER_VICTIM = """
import os, signal, sys
from ape import accounts, networks, project
from codexfield.keepers.base import KeeperState
from codexfield.keepers.prober import Prober

rpc, staking_address, reporter_address, state, point = sys.argv[1:6]
with networks.parse_network_choice("ethereum:local:foundry", provider_settings={"host": rpc}):
    reporter = next(a for a in accounts.test_accounts if a.address == reporter_address)
    staking = project.AccessStaking.at(staking_address)
    kill = {point: lambda intent: os.kill(os.getpid(), signal.SIGKILL)}
    Prober(staking, reporter, KeeperState(state), hooks=kill).report()
print("finished without reaching the kill point")
"""


@pytest.mark.parametrize("point", POINTS)
def test_prober__sigkilled_subprocess__restart_reports_the_epoch_once(
    grid, node, start_gateway, tmp_path, chain, point
):
    """A real SIGKILL of a prober process at a point the test chooses, then a restart."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    staking = grid.c["AccessStaking"]
    grid.cdx.mint(node, 1_000 * 10**18, sender=grid.reporters[0])
    server = start_gateway()
    server.gateway.ensure_registered(server.url, 1_000 * 10**18)
    genesis, length = staking.genesis(), staking.epoch_length()
    chain.mine(timestamp=max(chain.blocks.head.timestamp, genesis) + length)
    epoch = staking.current_epoch()
    states = [tmp_path / f"p{i}.sqlite" for i in range(3)]
    probers = [Prober(staking, r, KeeperState(s), probes=2) for r, s in zip(grid.reporters, states)]
    for p in probers:
        p.probe()
    chain.mine(timestamp=genesis + (epoch + 1) * length + 30)
    nonce0 = grid.reporters[0].nonce
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBER_VICTIM,
            chain.provider.uri,
            str(staking.address),
            grid.reporters[0].address,
            str(states[0]),
            point,
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.stdout + proc.stderr)[-2000:]
    restarted = Prober(staking, grid.reporters[0], KeeperState(states[0]))  # reconciles what the dead one left
    restarted.report()
    assert restarted.report() == []
    assert grid.reporters[0].nonce - nonce0 == 1  # one report transaction, never two
    for p in probers[1:]:
        assert p.report() == [epoch]
    assert len(staking.reports(epoch, node)) == 3
