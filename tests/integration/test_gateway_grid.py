"""The grid routes by quality (issue 15): 5 gateways on loopback, one degraded (slow, failing most
probes and a share of calls); probers and the finalizer run real epochs on the chain while
consumers route through `GridClient` (the index = AccessStaking's node list). The degraded
node's reliability falls, it gets fewer calls and less reward, and it is jailed; the healthy
nodes earn more."""

from __future__ import annotations

import random
import time

from eth_account import Account

from codexfield.keepers.base import KeeperState
from codexfield.keepers.finalizer import Finalizer
from codexfield.keepers.prober import Prober
from codexfield.node.client import GridClient
from codexfield.node.gateway import Gateway, GatewayServer, InvokeError
from codexfield.node.store import NodeStore
from codexfield.poa import WAD, Status, read_nodes
from codexfield.sdk.metering import ConsumerLedger

from operate_helpers import NODE_PRICE

EPOCHS = 4
CALLS = 5  # per consumer per epoch
CONSUMERS = 4


class DegradedGateway(Gateway):
    """Slow (1.2 s), and failing: 95% of health probes answer 500, a share of calls is refused (503 busy,
    before any voucher is accepted: never charged)."""

    rng = random.Random(15)

    def health(self):
        time.sleep(1.2)
        if self.rng.random() < 0.95:
            raise RuntimeError("degraded")
        return super().health()

    def invoke(self, body):
        time.sleep(0.3)
        if self.rng.random() < 0.5:
            raise InvokeError(503, "busy", "degraded node")
        return super().invoke(body)


def test_grid__routing_by_quality__degraded_node_jailed_healthy_earn_more(grid, admin, accounts, chain, tmp_path):
    staking, meter = grid.c["AccessStaking"], grid.c["UsageMeter"]
    stake = int(staking.params().min_stake)
    servers, nodes = [], []
    for i in range(5):
        acct = accounts.generate_test_account()
        admin.transfer(acct, 10**18)
        grid.cdx.mint(acct, stake, sender=admin)
        cls = DegradedGateway if i == 0 else Gateway
        gw = cls(
            capsule_id=grid.capsule,
            model=grid.model,
            account=acct,
            contracts=grid.c,
            store=NodeStore(tmp_path / f"node{i}.sqlite"),
            price_per_mu=NODE_PRICE,
            max_age_s=3600,
        )
        server = GatewayServer(gw).start(flusher=False)
        gw.ensure_registered(server.url, stake)
        servers.append(server)
        nodes.append(acct)
    degraded = nodes[0].address
    token = grid.cdx if staking.reward_token() == grid.cdx.address else grid.usdc
    token.mint(admin, 10**21, sender=admin)
    token.approve(staking, 10**21, sender=admin)

    consumers = []
    for k in range(CONSUMERS):
        a = Account.create()
        cred = int(grid.c["LicenseManager"].purchase(grid.terms_id, a.address, 0, sender=admin).return_value)
        grid.usdc.mint(admin, 10**9, sender=admin)
        grid.usdc.approve(meter, 10**9, sender=admin)
        meter.deposit(grid.usdc, 10**9, a.address, sender=admin)
        ledger = ConsumerLedger(tmp_path / f"c{k}.sqlite", grid.domain, a.key)
        mine = {n.address for n in nodes}
        consumers.append(
            (
                cred,
                GridClient(
                    lambda mine=mine: [n for n in read_nodes(staking) if n.address in mine],
                    ledger,
                    timeout=3,
                    refresh_s=0,
                    seed=k,
                ),
            )
        )
    probers = [
        Prober(staking, r, KeeperState(tmp_path / f"p{i}.sqlite"), probes=2, timeout=2.0)
        for i, r in enumerate(grid.reporters)
    ]
    finalizer = Finalizer(staking, meter, admin, KeeperState(tmp_path / "fin.sqlite"))
    genesis, length = int(staking.genesis()), int(staking.epoch_length())
    window = int(staking.params().report_window)
    calls_per_epoch, reliability = [], []
    claim0 = {n.address: int(staking.claimable(n)) for n in nodes}
    try:
        for _ in range(EPOCHS):
            staking.fund_rewards(10**19, sender=admin)
            epoch = int(staking.current_epoch())
            before = {n.address: sum(c.calls.get(n.address, 0) for _, c in consumers) for n in nodes}
            for p in probers:
                p.probe()
            for cred, client in consumers:
                for _ in range(CALLS):
                    client.invoke(cred, "my parcel is late")
            for p in probers:
                p.probe()
            for s in servers:
                s.gateway.flush_now()
            calls_per_epoch.append({a: sum(c.calls.get(a, 0) for _, c in consumers) - before[a] for a in before})
            chain.mine(timestamp=genesis + (epoch + 1) * length + 30)
            for p in probers:
                p.report()
            chain.mine(timestamp=genesis + (epoch + 1) * length + window + 1)
            finalizer.run_once()
            reliability.append({n.address: int(staking.node(n).reliability) for n in nodes})
    finally:
        for s in servers:
            s.stop(flush=False)
    earned = {n.address: int(staking.claimable(n)) - claim0[n.address] for n in nodes}
    healthy = [n.address for n in nodes[1:]]
    first, last = reliability[0], reliability[-1]
    print("calls per epoch (degraded first):", [[e[n.address] for n in nodes] for e in calls_per_epoch])
    print("reliability per epoch (WAD):", [[r[n.address] / WAD for n in nodes] for r in reliability])
    print(
        "rewards earned:", [earned[n.address] for n in nodes], "status:", [int(staking.node(n).status) for n in nodes]
    )
    assert last[degraded] < first[degraded] < WAD // 2  # its reliability falls
    assert all(last[h] > last[degraded] for h in healthy)
    total_degraded = sum(e[degraded] for e in calls_per_epoch)
    assert all(total_degraded < sum(e[h] for e in calls_per_epoch) for h in healthy)  # fewer calls
    assert all(earned[h] > earned[degraded] for h in healthy)  # less reward; the healthy earn more
    assert int(staking.node(nodes[0]).status) == Status.JAILED  # jailed
